//! Latency by link: the one-way delay of every directed node-to-node link,
//! from `--latency` (for `test`, `bench` and `sim`).
//!
//! ```text
//! --latency uniform:5                                 every link 5 ms
//! --latency 'matrix:0,40,80;40,0,60;80,60,0'          row i: from n(i+1), in ms
//! --latency matrix:delays.txt                         the same, a row a line
//! --latency 'regions:us-east=n1,n2;eu-west=n3,n4;ap-northeast=n5'
//! ```
//!
//! A matrix's entry `[i][j]` is the one-way delay from node `i` to node
//! `j`; it may be asymmetric, and its diagonal must be 0. Named regions
//! take their delays from the built-in table of [`regions`]. Delays apply
//! to node-to-node traffic only: clients sit next to the node they talk to,
//! at zero delay.

pub mod regions;

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde::Serialize;
use std::time::Duration;

/// The largest one-way delay accepted, in ms.
const MAX_MS: f64 = 10_000.0;

/// One-way delays between the nodes, as `--latency` gave them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Latency {
    /// The flag's text, for the run's records.
    pub spec: String,
    /// `[from][to]`, µs.
    pub one_way_us: Vec<Vec<u64>>,
}

impl Latency {
    /// Parses `--latency` for a cluster of `n` nodes.
    pub fn parse(spec: &str, n: usize) -> Result<Latency> {
        let spec = spec.trim();
        let one_way_us = if let Some(ms) = spec.strip_prefix("uniform:") {
            let us = micros(ms).with_context(|| format!("uniform:{ms}"))?;
            (0..n)
                .map(|i| (0..n).map(|j| if i == j { 0 } else { us }).collect())
                .collect()
        } else if let Some(m) = spec.strip_prefix("matrix:") {
            matrix(m, n)?
        } else if let Some(r) = spec.strip_prefix("regions:") {
            by_region(r, n)?
        } else {
            bail!(
                "--latency {spec:?}: expected uniform:MS, matrix:ROW;ROW;... (ms, comma-separated), \
                 matrix:FILE or regions:NAME=n1,n2;NAME=n3,..."
            );
        };
        Ok(Latency {
            spec: spec.to_owned(),
            one_way_us,
        })
    }

    pub fn n(&self) -> usize {
        self.one_way_us.len()
    }

    /// The one-way delay from node `from` to node `to`.
    pub fn one_way(&self, from: usize, to: usize) -> Duration {
        Duration::from_micros(self.one_way_us[from][to])
    }

    /// The nodes' tick for these delays, in ms: the protocol's timeouts are
    /// counted in ticks (a learner asks again after 6, a leader starts a new
    /// ballot after 12, an election after 10 silent ones), and a ballot
    /// across the slowest link takes about three of its one-way delays. At
    /// 10 ms a tick (the node's default) ballots across oceans would time
    /// out before they could finish, so the tick grows to half the longest
    /// delay: the same timeouts a deployment across those regions would
    /// need.
    pub fn tick_ms(&self) -> u64 {
        (self.max().as_millis() as u64).div_ceil(2).max(10)
    }

    /// The longest one-way delay of any link.
    pub fn max(&self) -> Duration {
        let us = self.one_way_us.iter().flatten().copied().max();
        Duration::from_micros(us.unwrap_or(0))
    }
}

/// A delay in ms, as text, in µs.
fn micros(ms: &str) -> Result<u64> {
    let v: f64 = ms
        .trim()
        .parse()
        .map_err(|_| anyhow!("{:?} is not a number of ms", ms.trim()))?;
    ensure!(
        v.is_finite() && (0.0..=MAX_MS).contains(&v),
        "{v} ms is outside [0, {MAX_MS}]"
    );
    Ok((v * 1000.0).round() as u64)
}

/// An inline matrix (rows split by `;`) or a file of one (a row a line,
/// `#` comments); entries split by commas or blanks.
fn matrix(text: &str, n: usize) -> Result<Vec<Vec<u64>>> {
    let inline = text
        .chars()
        .all(|c| c.is_ascii_digit() || ".,; ".contains(c));
    let rows: Vec<String> = if inline {
        text.split(';').map(str::to_owned).collect()
    } else {
        let file = std::fs::read_to_string(text)
            .with_context(|| format!("--latency matrix:{text}: cannot read the file"))?;
        file.lines()
            .map(|l| l.split('#').next().unwrap_or("").trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect()
    };
    ensure!(
        rows.len() == n,
        "--latency matrix: {} rows for {n} nodes",
        rows.len()
    );
    let mut m = Vec::with_capacity(n);
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<&str> = row
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|c| !c.is_empty())
            .collect();
        ensure!(
            cells.len() == n,
            "--latency matrix: row {} has {} entries for {n} nodes",
            i + 1,
            cells.len()
        );
        let row = cells
            .iter()
            .map(|c| micros(c))
            .collect::<Result<Vec<u64>>>()
            .with_context(|| format!("--latency matrix: row {}", i + 1))?;
        ensure!(
            row[i] == 0,
            "--latency matrix: entry {} of row {} (a node to itself) must be 0",
            i + 1,
            i + 1
        );
        m.push(row);
    }
    Ok(m)
}

/// `NAME=n1,n2;NAME=n3`: every node in exactly one known region.
fn by_region(text: &str, n: usize) -> Result<Vec<Vec<u64>>> {
    let mut region_of: Vec<Option<usize>> = vec![None; n];
    for part in text.split(';').filter(|p| !p.trim().is_empty()) {
        let (name, nodes) = part
            .split_once('=')
            .ok_or_else(|| anyhow!("--latency regions: {part:?} is not NAME=n1,n2,..."))?;
        let r = regions::index(name.trim()).ok_or_else(|| {
            anyhow!(
                "--latency regions: unknown region {:?}; the table knows {}",
                name.trim(),
                regions::names()
            )
        })?;
        for node in nodes.split(',').map(str::trim) {
            let i = node_index(node, n)?;
            ensure!(
                region_of[i].is_none(),
                "--latency regions: {node} is named twice"
            );
            region_of[i] = Some(r);
        }
    }
    let placed: Vec<usize> = region_of
        .iter()
        .enumerate()
        .map(|(i, r)| r.ok_or_else(|| anyhow!("--latency regions: n{} is in no region", i + 1)))
        .collect::<Result<_>>()?;
    Ok((0..n)
        .map(|i| {
            (0..n)
                .map(|j| match i == j {
                    true => 0,
                    false => regions::one_way_us(placed[i], placed[j]),
                })
                .collect()
        })
        .collect())
}

/// `n3` -> 2, for a cluster of `n` nodes.
fn node_index(name: &str, n: usize) -> Result<usize> {
    name.strip_prefix('n')
        .and_then(|k| k.parse::<usize>().ok())
        .filter(|&k| (1..=n).contains(&k))
        .map(|k| k - 1)
        .ok_or_else(|| anyhow!("--latency regions: {name:?} is not a node of n1..n{n}"))
}

#[cfg(test)]
mod tests;
