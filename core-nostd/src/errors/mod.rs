//! The error manager: error kinds registered by tools, deduplication, suppressions, XML output.
