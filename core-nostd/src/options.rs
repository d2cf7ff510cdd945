//! The core's command line: Valgrind's option syntax, core options, hand-over of tool options.
