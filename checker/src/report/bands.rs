//! Nemesis bands behind every drawing: one shaded interval per fault, its
//! label in the first row above the plot where it does not run into the
//! label before it, so that no two labels overlap however close the faults
//! come.

use super::svg::{escape, truncate, Scale, WIDTH};
use super::timeline::Band;
use std::fmt::Write;

/// Height of one row of labels.
pub const LABEL_ROW: f64 = 11.0;
/// Width of a label character at the band font (9px sans-serif), a little
/// generous so that estimates err towards space.
const CHAR: f64 = 5.4;
/// Longest label drawn; the whole one is the band's tooltip.
const LABEL_CHARS: usize = 44;
/// Space kept between two labels of a row.
const GAP: f64 = 6.0;

/// A band placed on a drawing.
#[derive(Clone, Debug)]
pub struct Laid {
    pub x1: f64,
    pub x2: f64,
    /// Where its label starts: at the band, or further left for a band so
    /// near the right edge that its label would run off the drawing.
    pub label_x: f64,
    /// Its label's row, 0 the top one.
    pub row: usize,
    pub text: String,
    pub title: String,
    pub colour: usize,
}

impl Laid {
    fn label_width(&self) -> f64 {
        self.text.chars().count() as f64 * CHAR
    }

    fn label_end(&self) -> f64 {
        self.label_x + self.label_width()
    }
}

/// The fault's kind: the first word of its label (`partition`, `kill`...).
fn kind(label: &str) -> &str {
    label.split_whitespace().next().unwrap_or("")
}

/// Places the bands in view, each label in the first row where it clears
/// the labels already there.
pub fn lay_out(bands: &[Band], scale: &Scale) -> Vec<Laid> {
    let mut kinds: Vec<&str> = Vec::new();
    let mut row_ends: Vec<f64> = Vec::new();
    let mut laid = Vec::new();
    let mut sorted: Vec<&Band> = bands
        .iter()
        .filter(|b| b.end >= scale.from && b.start <= scale.to)
        .collect();
    sorted.sort_by_key(|b| b.start);
    for b in sorted {
        let k = kind(&b.label);
        let colour = kinds.iter().position(|x| *x == k).unwrap_or_else(|| {
            kinds.push(k);
            kinds.len() - 1
        });
        let x1 = scale.x(b.start);
        let mut band = Laid {
            x1,
            x2: scale.x(b.end).max(x1 + 2.0),
            label_x: x1 + 1.0,
            row: 0,
            text: truncate(&b.label, LABEL_CHARS),
            title: b.label.clone(),
            colour,
        };
        band.label_x = band.label_x.min(WIDTH - 4.0 - band.label_width()).max(0.0);
        let start = band.label_x;
        band.row = match row_ends.iter().position(|&end| end + GAP <= start) {
            Some(r) => r,
            None => {
                row_ends.push(f64::MIN);
                row_ends.len() - 1
            }
        };
        row_ends[band.row] = band.label_end();
        laid.push(band);
    }
    laid
}

/// Height the label rows take above the plot.
pub fn header(laid: &[Laid]) -> f64 {
    laid.iter()
        .map(|b| (b.row + 1) as f64 * LABEL_ROW + 2.0)
        .fold(0.0, f64::max)
}

const FILLS: [&str; 4] = ["#f3c6c6", "#c6d4f3", "#f3e3c0", "#d4c6f3"];
const INKS: [&str; 4] = ["#a33", "#335fa3", "#8a6415", "#5b3aa3"];

/// Draws the bands from `top` (below the label rows) to `bottom`, with
/// their labels in the rows above `top`.
pub fn draw(svg: &mut String, laid: &[Laid], top: f64, bottom: f64) {
    for b in laid {
        let (fill, ink) = (FILLS[b.colour % 4], INKS[b.colour % 4]);
        let y = (b.row + 1) as f64 * LABEL_ROW - 2.0;
        let _ = write!(
            svg,
            r##"<g class="band" data-row="{}"><rect x="{:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{fill}" opacity="0.55"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{top:.1}" stroke="{ink}" stroke-width="0.6"/><text x="{:.1}" y="{y:.1}" class="band" fill="{ink}">{}</text><title>{}</title></g>"##,
            b.row,
            b.x1,
            b.x2 - b.x1,
            (bottom - top).max(0.0),
            b.x1,
            y + 2.0,
            b.x1,
            b.label_x,
            escape(&b.text),
            escape(&b.title),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn band(start: u64, end: u64, label: &str) -> Band {
        Band {
            start,
            end,
            label: label.to_owned(),
        }
    }

    #[test]
    fn close_labels_go_to_different_rows_and_never_overlap() {
        let scale = Scale { from: 0, to: 1000 };
        let bands = [
            band(100, 300, "partition n1 n2 | n3 n4 n5"),
            band(105, 110, "kill n3"),
            band(110, 400, "partition majorities-ring"),
            band(900, 950, "kill n1"),
        ];
        let laid = lay_out(&bands, &scale);
        assert_eq!(laid.len(), 4);
        assert_eq!(
            laid.iter().map(|b| b.row).collect::<Vec<_>>(),
            [0, 1, 2, 0],
            "the far band reuses the first row"
        );
        for (i, a) in laid.iter().enumerate() {
            for b in &laid[i + 1..] {
                let apart = a.label_end() + GAP <= b.label_x || b.label_end() + GAP <= a.label_x;
                assert!(a.row != b.row || apart, "{a:?} runs into {b:?}");
            }
        }
        assert_eq!(header(&laid), 3.0 * LABEL_ROW + 2.0);
        assert_ne!(laid[0].colour, laid[1].colour, "kinds get their colours");
        assert_eq!(laid[0].colour, laid[2].colour);
    }

    #[test]
    fn a_label_at_the_right_edge_stays_on_the_drawing() {
        let scale = Scale { from: 0, to: 1000 };
        let laid = lay_out(&[band(1000, 1000, "self-report n1: chosen value")], &scale);
        assert!(laid[0].label_end() <= WIDTH, "{:?}", laid[0]);
        assert!(laid[0].label_x < laid[0].x1);
    }

    #[test]
    fn bands_out_of_view_are_left_out() {
        let scale = Scale {
            from: 500,
            to: 1000,
        };
        let laid = lay_out(
            &[band(0, 100, "kill n1"), band(600, 700, "kill n2")],
            &scale,
        );
        assert_eq!(laid.len(), 1);
        assert_eq!(laid[0].title, "kill n2");
    }
}
