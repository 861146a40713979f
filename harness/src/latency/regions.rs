//! The built-in table of one-way delays between named regions, for
//! `--latency regions:...`.
//!
//! The figures are approximate: half of the average round-trip times
//! between AWS regions published in "Latency Between AWS Global Regions"
//! (2017), as tabulated at
//! <https://acomputerscientistlearnsaws.blogspot.com/2017/04/aws-regions.html>,
//! each pair's two directions averaged and rounded to 0.1 ms. Routes and
//! figures change; a user who measured their own should pass
//! `--latency matrix:...` instead. Two nodes in the same region are one
//! availability-zone hop apart: 0.5 ms one way (inter-AZ pings run from
//! 0.25 to 3.4 ms round trip, <https://www.xkyle.com/Measuring-AWS-Region-and-AZ-Latency/>).

/// The regions, in the order of [`RTT_MS`]'s rows.
pub const REGIONS: [(&str, &str); 7] = [
    ("us-east", "AWS us-east-1, N. Virginia"),
    ("us-west", "AWS us-west-2, Oregon"),
    ("eu-west", "AWS eu-west-1, Ireland"),
    ("eu-central", "AWS eu-central-1, Frankfurt"),
    ("ap-northeast", "AWS ap-northeast-1, Tokyo"),
    ("ap-southeast", "AWS ap-southeast-1, Singapore"),
    ("sa-east", "AWS sa-east-1, São Paulo"),
];

/// Average round-trip times in ms between the regions of [`REGIONS`].
const RTT_MS: [[f64; 7]; 7] = [
    [0.0, 87.8, 80.5, 88.6, 145.3, 216.7, 119.5],
    [87.8, 0.0, 137.0, 159.5, 89.1, 161.4, 182.7],
    [80.5, 137.0, 0.0, 19.6, 212.4, 238.6, 191.3],
    [88.6, 159.5, 19.6, 0.0, 236.6, 325.9, 194.9],
    [145.3, 89.1, 212.4, 236.6, 0.0, 73.8, 256.8],
    [216.7, 161.4, 238.6, 325.9, 73.8, 0.0, 328.1],
    [119.5, 182.7, 191.3, 194.9, 256.8, 328.1, 0.0],
];

/// One way between two nodes of the same region.
pub const SAME_REGION_US: u64 = 500;

/// The index of region `name` in [`REGIONS`].
pub fn index(name: &str) -> Option<usize> {
    REGIONS.iter().position(|(n, _)| *n == name)
}

/// The one-way delay in µs between regions `a` and `b` (indices).
pub fn one_way_us(a: usize, b: usize) -> u64 {
    if a == b {
        SAME_REGION_US
    } else {
        (RTT_MS[a][b] * 1000.0 / 2.0).round() as u64
    }
}

/// The known regions' names, for error messages and `--help`.
pub fn names() -> String {
    REGIONS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_symmetric_with_an_empty_diagonal() {
        for (a, row) in RTT_MS.iter().enumerate() {
            assert_eq!(row[a], 0.0);
            for (b, &rtt) in row.iter().enumerate() {
                assert_eq!(rtt, RTT_MS[b][a], "{a} {b}");
            }
        }
        assert_eq!(one_way_us(0, 2), 40_250, "us-east to eu-west");
        assert_eq!(one_way_us(4, 4), SAME_REGION_US);
    }
}
