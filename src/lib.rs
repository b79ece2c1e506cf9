//! trldm: Tiny Recursive Language Diffusion Models (TR-LDM).
//!
//! The TR-LDM paper (docs/FACTS.md, "The paper") maps onto the modules as:
//! Algorithm 1-2 and Sec. 5.2 → [`model`]; Eq. 3, 6-9 → [`train::loss`];
//! Algorithm 3 → [`train::deep_sup`]; Algorithm 4 → [`sample`]; Sec. 9
//! metrics → [`tasks`] and [`eval`]; Sec. 7.1 tokenisation → [`data`].
pub mod amp;
pub mod checkpoint;
pub mod cmd;
pub mod config;
pub mod data;
pub mod device;
pub mod dist;
pub mod dotted;
pub mod eval;
pub mod flops;
pub mod model;
pub mod progress;
pub mod report;
pub mod run;
pub mod sample;
pub mod seed;
pub mod signals;
pub mod sweep;
pub mod tasks;
pub mod theory;
pub mod train;
pub mod util;
