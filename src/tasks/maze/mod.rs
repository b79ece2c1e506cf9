//! Maze(-Hard): grid format, Searchformer-style generator, BFS shortest
//! paths, dihedral augmentation, data checks and the paper's metrics.
//!
//! * Format (docs/FACTS.md, "Data formats", Maze-Hard CSV): a grid is H x W
//!   characters in row-major order, `#` wall, ` ` open, `S` start, `G` goal,
//!   `o` path (answers only). 30x30 rows are 900 characters.
//! * Cell codes (this module): [`WALL`] 0, [`OPEN`] 1, [`START`] 2, [`GOAL`] 3,
//!   [`PATH`] 4. The model token map lives in `tokens`, not here.
//! * Tokenization (paper Sec. 7.1): the sequence is the H x W grid, one token
//!   per cell (e.g. 20 x 20 = 400).
//! * Path length convention (as `ref_trldm.py`'s `gen_maze`): the length of a
//!   path is its number of *moves*, i.e. the number of `o` cells + 1.
//! * Metrics (paper Sec. 9, Tables 1 and 5): exact match, valid path, optimal
//!   path and length ratio, see [`score`].

mod augment;
mod check;
mod format;
mod generate;
mod io;
mod metrics;
mod search;
mod stats;
#[cfg(test)]
mod tests;

pub use augment::*;
pub use check::*;
pub use format::*;
pub use generate::*;
pub use io::*;
pub use metrics::*;
pub use search::*;
pub use stats::*;

/// A wall cell (`#`).
pub const WALL: u8 = 0;
/// An open cell (` `).
pub const OPEN: u8 = 1;
/// The start cell (`S`), exactly one per maze.
pub const START: u8 = 2;
/// The goal cell (`G`), exactly one per maze.
pub const GOAL: u8 = 3;
/// A cell on the answer path (`o`), answers only.
pub const PATH: u8 = 4;
/// Number of cell codes; codes `>= N_CODES` are invalid.
pub const N_CODES: u8 = 5;

/// Neighbour order used by every BFS (down, up, right, left, as `ref_trldm.py`);
/// fixing it makes the chosen shortest path deterministic.
const DIRS: [(isize, isize); 4] = [(1, 0), (-1, 0), (0, 1), (0, -1)];

/// Marks an unreached cell in a distance buffer.
const UNSEEN: u32 = u32::MAX;
/// Marks a wall in the generator's distance buffer.
const BLOCKED: u32 = u32::MAX - 1;
