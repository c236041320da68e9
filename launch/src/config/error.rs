//! Config errors that name the file, line and column, with the offending line quoted.

use std::fmt;
use std::ops::Range;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Byte range of the offending text; `None` when it is not in the file (a default value, or a
    /// missing table).
    pub span: Option<Range<usize>>,
    /// What was expected and what was found.
    pub message: String,
}

/// Line and column (both 1-based; the column counts characters) of a byte offset in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    // Step back to a char boundary so slicing never panics on a span inside a multi-byte char.
    let mut at = offset;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = text[line_start..at].chars().count() + 1;
    (line, col)
}

/// A config file that could not be used: one or more diagnostics.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConfigError {
    /// The file as the user named it (or `<built-in demo>`).
    pub file: String,
    /// The file's text, to quote lines from.
    pub text: String,
    /// Every problem found (at least one).
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    /// `(line, column)` of the first diagnostic, when it has a position.
    pub fn first_position(&self) -> Option<(usize, usize)> {
        let span = self.diagnostics.first()?.span.clone()?;
        Some(line_col(&self.text, span.start))
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let Some(span) = d.span.clone().filter(|s| s.end > 0 || s.start > 0) else {
                write!(f, "{}: {}", self.file, d.message)?;
                continue;
            };
            let (line, col) = line_col(&self.text, span.start);
            write!(f, "{}:{line}:{col}: {}", self.file, d.message)?;
            let Some(src) = self.text.lines().nth(line - 1) else {
                continue;
            };
            let width = line.to_string().len();
            // Underline up to the end of the span or of the line, whichever is first.
            let (end_line, end_col) = line_col(&self.text, span.end.max(span.start + 1));
            let carets = if end_line == line {
                end_col.saturating_sub(col).max(1)
            } else {
                src.chars().count().saturating_sub(col - 1).max(1)
            };
            write!(
                f,
                "\n{:width$} |\n{line} | {src}\n{:width$} | {}{}",
                "",
                "",
                " ".repeat(col - 1),
                "^".repeat(carets)
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let t = "a = 1\nbé = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        // 'é' is two bytes; the '=' after "bé " is the 4th character.
        assert_eq!(line_col(t, 10), (2, 4));
        assert_eq!(line_col(t, 9), (2, 3));
        // Inside a multi-byte character: the character itself.
        assert_eq!(line_col(t, 8), (2, 2));
        assert_eq!(line_col(t, 999), (3, 1));
    }

    #[test]
    fn renders_caret_under_the_value() {
        let e = ConfigError {
            file: "x.toml".into(),
            text: "[[channel]]\nring_depth = 6\n".into(),
            diagnostics: vec![Diagnostic {
                span: Some(25..26),
                message: "bad".into(),
            }],
        };
        let s = e.to_string();
        assert!(s.starts_with("x.toml:2:14: bad"), "{s}");
        assert!(s.contains("2 | ring_depth = 6\n  |              ^"), "{s}");
    }
}
