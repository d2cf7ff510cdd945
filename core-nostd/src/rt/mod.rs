//! Process entry, `mem*` symbols, panic handler and the `tool_main!` macro that gives a tool executable its `_start`.
