//! Command implementations behind the CLI (`main.rs` only parses and dispatches).
pub mod bench;
pub mod data;
pub mod doctor;
pub mod report;
pub mod run;
pub mod sweep;
pub mod theory;
