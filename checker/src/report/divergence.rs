//! A consensus violation's two c-structs side by side: the per-key
//! sequences the two learners (or one learner at two times) hold, around
//! where they part, every row that differs shaded and the first divergence
//! marked.

use super::svg::escape;
use crate::consensus::SideBySide;
use std::fmt::Write;

/// The two sequences as a table, one row per position on the key.
pub fn render(h: &mut String, s: &SideBySide) {
    let key = s.key.as_deref().map_or("the checkpoints".to_owned(), |k| {
        format!("key {}", escape(k))
    });
    let _ = write!(
        h,
        "<div class=\"divergence\"><p>Per-key sequences of the two c-structs on {key}: positions {} to {}; \
         the first divergence is at position {}.</p>\
         <table class=\"sidebyside\"><tr><th>position on {key}</th><th>{}</th><th>{}</th><th></th></tr>",
        s.start,
        s.start + s.left.len().max(s.right.len()).saturating_sub(1),
        s.start + s.marked,
        escape(&s.left_label),
        escape(&s.right_label)
    );
    let rows = s.left.len().max(s.right.len());
    for i in 0..rows {
        let cell = |ops: &[String]| ops.get(i).map_or("—".to_owned(), |c| escape(c));
        let differs = s.left.get(i) != s.right.get(i);
        let (class, note) = if i == s.marked {
            (
                " class=\"marked\" id=\"first-divergence\"",
                "← first divergence",
            )
        } else if differs {
            (" class=\"differs\"", "")
        } else {
            ("", "")
        };
        let _ = write!(
            h,
            "<tr{class} data-position=\"{}\"><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{note}</td></tr>",
            s.start + i,
            s.start + i,
            cell(&s.left_ops),
            cell(&s.right_ops)
        );
    }
    h.push_str("</table></div>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::CmdId;

    #[test]
    fn the_first_divergence_is_marked_at_its_position() {
        let ids = |v: &[&str]| v.iter().map(|s| CmdId((*s).into())).collect::<Vec<_>>();
        let ops = |v: &[&str]| {
            v.iter()
                .map(|s| format!("{s} put x {s}"))
                .collect::<Vec<_>>()
        };
        let s = SideBySide {
            key: Some("x".into()),
            left_label: "n1".into(),
            right_label: "n2".into(),
            start: 3,
            left: ids(&["a", "b", "c", "d"]),
            right: ids(&["a", "b", "d", "c"]),
            left_ops: ops(&["a", "b", "c", "d"]),
            right_ops: ops(&["a", "b", "d", "c"]),
            marked: 2,
        };
        let mut h = String::new();
        render(&mut h, &s);
        let marked = h.find("id=\"first-divergence\"").unwrap();
        let row = &h[marked..h[marked..].find("</tr>").unwrap() + marked];
        assert!(row.contains("data-position=\"5\""), "{row}");
        assert!(
            row.contains("c put x c") && row.contains("d put x d"),
            "{row}"
        );
        assert_eq!(h.matches("id=\"first-divergence\"").count(), 1);
        assert_eq!(
            h.matches("class=\"differs\"").count(),
            1,
            "position 6 differs too"
        );
        assert!(h.contains("first divergence is at position 5"));
    }
}
