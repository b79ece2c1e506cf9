//! Sudoku(-Extreme): grid format, exact solver, validity, loading, generator,
//! augmentations and metrics (paper Sec. 9.2, Table 4; docs/FACTS.md,
//! "Data formats", "Augmentations").
//!
//! # Cell codes
//! A grid is a `Vec<u8>` of `N*N` cells in row-major order, where `N = n*n`
//! for the box size `n` (2, 3, 4, 5: 4x4, 9x9, 16x16, 25x25 grids).
//! Code 0 is a blank, codes `1..=N` are digits.
//!
//! # Text form
//! One character per cell: `.` or `0` = blank, `1`..`9` = 1..9 and, for
//! `N > 9`, `A` = 10, `B` = 11, ... (lower case is accepted when reading).
//! Blanks are written as `.`. The box size follows from the length
//! (16, 81, 256, 625 characters) unless it is given.
//!
//! # Files
//! The HRM/TRM CSV layout `source,question,answer,rating` (see [`csvio`]);
//! an empty or missing answer is solved on load. Plain files hold one
//! puzzle per line (see [`load_plain`]).

mod augment;
mod check;
mod format;
mod generate;
mod io;
mod metrics;
mod solve;
#[cfg(test)]
mod tests;

pub use augment::*;
pub use check::*;
pub use format::*;
pub use generate::*;
pub use io::*;
pub use metrics::*;
pub use solve::*;

/// Box sizes the solver and generator support (4x4 up to 25x25 grids).
pub const BOX_SIZES: [usize; 4] = [2, 3, 4, 5];
