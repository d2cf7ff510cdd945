//! Messages to the user: `==PID==` prefixes, log destinations (`--log-fd`, `--log-file`), verbosity.
