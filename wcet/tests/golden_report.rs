//! Golden report: a fixed synthetic trace and a fixed calibration give byte-identical Markdown
//! and JSON reports. Regenerate with `UPDATE_GOLDEN=1 cargo test -p wcet --test golden_report`.

mod common;

use rtfuse_trace::TraceReader;
use std::path::PathBuf;

fn check(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        eprintln!("updated {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b);
        panic!(
            "{name} differs from the golden file (first differing line {line:?}); if intended, rerun with UPDATE_GOLDEN=1\n--- actual ---\n{actual}"
        );
    }
}

#[test]
fn golden_markdown_and_json() {
    let input = common::input();
    let bounds = wcet::bound::analyze(&input).unwrap();
    let trace =
        TraceReader::from_bytes(&common::trace([20_000, 600, 200], &|_, _| 0, &[], true)).unwrap();
    let report = wcet::report::build(&input, &bounds, &[trace]);
    assert!(report.certified, "{:?}", report.not_certified_because);
    assert!(report.all_hold);
    // The lidar stream has too few samples for a fit: said so, not estimated.
    let lidar = report.streams.iter().find(|s| s.name == "lidar").unwrap();
    assert!(lidar.evt.is_none() && lidar.evt_error.as_deref().unwrap().contains("too few"));
    check("report.md", &report.to_markdown());
    check("report.json", &report.to_json());
    let html = report.to_html();
    assert!(html.contains("<svg") && html.contains("</html>"));
    assert_eq!(
        html.matches("<svg").count(),
        1 + 3 + 3,
        "stacked bar + per stream histogram and exceedance"
    );
}
