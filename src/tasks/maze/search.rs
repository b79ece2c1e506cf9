//! Breadth-first search: shortest paths, their length and their number.
use super::*;
use anyhow::Result;

/// Whether a cell can be walked on (anything but a wall or an invalid code).
fn passable(code: u8) -> bool {
    code != WALL && code < N_CODES
}

/// Calls `f` on each in-grid 4-neighbour of `cell`, in [`DIRS`] order.
#[inline]
pub(super) fn for_neighbours(cell: usize, h: usize, w: usize, mut f: impl FnMut(usize)) {
    let (r, c) = ((cell / w) as isize, (cell % w) as isize);
    for (dr, dc) in DIRS {
        let (nr, nc) = (r + dr, c + dc);
        if nr >= 0 && nc >= 0 && (nr as usize) < h && (nc as usize) < w {
            f(nr as usize * w + nc as usize);
        }
    }
}

/// Breadth-first search from `src` over cells where `open[i]`, writing move
/// counts into `dist` (`UNSEEN` when unreachable) and the visit order into
/// `queue`. Allocation-free when the buffers have capacity.
pub(super) fn bfs(
    open: impl Fn(usize) -> bool,
    h: usize,
    w: usize,
    src: usize,
    dist: &mut Vec<u32>,
    queue: &mut Vec<u32>,
) {
    dist.clear();
    dist.resize(h * w, UNSEEN);
    queue.clear();
    dist[src] = 0;
    queue.push(src as u32);
    let mut head = 0;
    while head < queue.len() {
        let cell = queue[head] as usize;
        head += 1;
        let d = dist[cell] + 1;
        for_neighbours(cell, h, w, |n| {
            if dist[n] == UNSEEN && open(n) {
                dist[n] = d;
                queue.push(n as u32);
            }
        });
    }
}

/// The unique `START` and `GOAL` of a grid, or why not.
pub(super) fn endpoints(grid: &[u8]) -> Result<(usize, usize), String> {
    let find = |code: u8, name: &str| {
        let mut it = grid
            .iter()
            .enumerate()
            .filter(|(_, &c)| c == code)
            .map(|(i, _)| i);
        match (it.next(), it.count()) {
            (Some(i), 0) => Ok(i),
            (None, _) => Err(format!("no {name}")),
            (Some(_), more) => Err(format!("{} {name} cells (expected 1)", more + 1)),
        }
    };
    Ok((find(START, "start 'S'")?, find(GOAL, "goal 'G'")?))
}

/// BFS distances from the start of a well-formed H x W grid.
fn distances_from_start(
    grid: &[u8],
    h: usize,
    w: usize,
) -> Option<(usize, usize, Vec<u32>, Vec<u32>)> {
    if grid.len() != h * w {
        return None;
    }
    let (s, g) = endpoints(grid).ok()?;
    let (mut dist, mut queue) = (Vec::new(), Vec::new());
    bfs(|i| passable(grid[i]), h, w, s, &mut dist, &mut queue);
    Some((s, g, dist, queue))
}

/// Walks back from `goal` to the start along decreasing `dist`, taking the
/// first neighbour in [`DIRS`] order: one shortest path, `S` first.
pub(super) fn backtrack(dist: &[u32], h: usize, w: usize, goal: usize) -> Vec<usize> {
    let mut path = vec![goal];
    let mut cur = goal;
    while dist[cur] > 0 {
        let want = dist[cur] - 1;
        let mut next = cur;
        for_neighbours(cur, h, w, |n| {
            if next == cur && dist[n] == want {
                next = n;
            }
        });
        cur = next;
        path.push(cur);
    }
    path.reverse();
    path
}

/// One shortest 4-connected path from `S` to `G` (cells, both ends included),
/// chosen deterministically by BFS with a fixed neighbour order; `None` when
/// the grid is malformed or `G` is unreachable. Walls block; every other
/// valid code is walkable.
pub fn shortest_path(grid: &[u8], h: usize, w: usize) -> Option<Vec<usize>> {
    let (_, g, dist, _) = distances_from_start(grid, h, w)?;
    (dist[g] != UNSEEN).then(|| backtrack(&dist, h, w, g))
}

/// The shortest `S`->`G` path length in moves (path cells + 1), if any.
pub fn shortest_len(grid: &[u8], h: usize, w: usize) -> Option<usize> {
    let (_, g, dist, _) = distances_from_start(grid, h, w)?;
    (dist[g] != UNSEEN).then_some(dist[g] as usize)
}

/// The number of distinct shortest `S`->`G` paths (saturating), by dynamic
/// programming over BFS layers; 0 when there is none (shortest paths are
/// often not unique: docs/FACTS.md, "Maze generation in the Searchformer style").
pub fn count_shortest_paths(grid: &[u8], h: usize, w: usize) -> u128 {
    let Some((s, g, dist, queue)) = distances_from_start(grid, h, w) else {
        return 0;
    };
    count_from_layers(&dist, &queue, h, w, s, g, &mut Vec::new())
}

/// Path counting over a finished BFS (`queue` is in nondecreasing distance).
pub(super) fn count_from_layers(
    dist: &[u32],
    queue: &[u32],
    h: usize,
    w: usize,
    s: usize,
    g: usize,
    ways: &mut Vec<u128>,
) -> u128 {
    if dist[g] == UNSEEN {
        return 0;
    }
    ways.clear();
    ways.resize(h * w, 0);
    ways[s] = 1;
    for &cell in queue {
        let cell = cell as usize;
        if dist[cell] > dist[g] {
            break;
        }
        if cell == s {
            continue;
        }
        let mut sum: u128 = 0;
        for_neighbours(cell, h, w, |n| {
            if dist[n] != UNSEEN && dist[n] + 1 == dist[cell] {
                sum = sum.saturating_add(ways[n]);
            }
        });
        ways[cell] = sum;
    }
    ways[g]
}
