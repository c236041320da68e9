//! A table both renderers (Markdown, HTML) share.

/// A table both renderers share: header and rows of cells.
pub(super) struct Table {
    pub(super) title: &'static str,
    pub(super) head: Vec<&'static str>,
    pub(super) rows: Vec<Vec<String>>,
}

impl Table {
    pub(super) fn markdown(&self, out: &mut String) {
        out.push_str(&format!(
            "\n## {}\n\n| {} |\n|{}\n",
            self.title,
            self.head.join(" | "),
            "---|".repeat(self.head.len())
        ));
        for r in &self.rows {
            out.push_str(&format!("| {} |\n", r.join(" | ")));
        }
    }

    pub(super) fn html(&self, out: &mut String) {
        out.push_str(&format!("<h2>{}</h2>\n<table>\n<tr>", esc(self.title)));
        for h in &self.head {
            out.push_str(&format!("<th>{}</th>", esc(h)));
        }
        out.push_str("</tr>\n");
        for r in &self.rows {
            out.push_str("<tr>");
            for c in r {
                out.push_str(&format!("<td>{}</td>", esc(c)));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }
}

pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
