//! The `wcet` binary end to end: every subcommand, and the bad inputs the issue names (C > T,
//! negative numbers, an unschedulable set, too few samples, a trace with gaps, a violation).

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn wcet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wcet"))
        .args(args)
        .output()
        .expect("run wcet")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, body: impl AsRef<[u8]>) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.to_string_lossy().into_owned()
}

/// Runs `wcet rta` on a task-set file with `body`: exit code, stdout, stderr.
fn rta(dir: &Path, name: &str, body: &str) -> (Option<i32>, String, String) {
    let o = wcet(&["rta", &write(dir, name, body)]);
    let (out, err) = text(&o);
    (o.status.code(), out, err)
}

#[test]
fn rta_toml_and_json_and_bad_sets() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    // Lehoczky 1990, example 3 (see tests/rta_oracle.rs for the hand iteration); arbitrary
    // deadline D = 120 > T, as in the paper's setting.
    let lehoczky = "[[tasks]]\nname = \"hi\"\nC = 26\nT = 70\npriority = 2\n\n\
                    [[tasks]]\nname = \"lo\"\nC = 62\nT = 100\nD = 120\npriority = 1\n";
    let (code, out, err) = rta(d, "ok.toml", lehoczky);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["tasks"][1]["response_ns"], 118);
    assert_eq!(v["tasks"][1]["busy_window"]["worst_q"], 4);

    // With D = T = 100 the same set misses its deadline: a sound R, flagged, exit status 2.
    let (code, _, err) = rta(d, "miss.toml", &lehoczky.replace("D = 120\n", ""));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("DEADLINE MISS: task `lo`: R = 118 > D = 100"),
        "{err}"
    );

    let (code, out, _) = rta(
        d,
        "j.json",
        r#"{"tasks":[{"c":1,"t":4,"j":1,"priority":3,"b":1,"d":3}]}"#,
    );
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["tasks"][0]["response_ns"], 3); // J 1 + B 1 + C 1

    let bad = [
        ("bad.toml", "[[tasks]]\nC = 80\nT = 70\n", "C = 80 > T = 70"),
        (
            "neg.json",
            r#"{"tasks":[{"c":5,"t":70,"j":-3}]}"#,
            "J = -3 is negative",
        ),
        (
            "typo.toml",
            "[[tasks]]\nC = 8\nT = 70\nprio = 1\n",
            "line 4",
        ),
        (
            "zero.toml",
            "[[tasks]]\nC = 0\nT = 0\n",
            "period T must be > 0",
        ),
        ("empty.json", r#"{"tasks":[]}"#, "empty"),
    ];
    for (name, body, msg) in bad {
        let (code, out, err) = rta(d, name, body);
        assert_eq!(code, Some(1), "{name}");
        assert!(err.contains(msg) && out.is_empty(), "{name}: {err}");
    }

    let (code, out, err) = rta(
        d,
        "over.toml",
        "[[tasks]]\nC = 6\nT = 10\npriority = 2\n[[tasks]]\nC = 5\nT = 10\npriority = 1\n",
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains("UNSCHEDULABLE (no bound exists): task `task1`"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["tasks"][1]["response_ns"].is_null(),
        "an unschedulable task must have no number"
    );
    assert_eq!(v["schedulable"], false);
}

#[test]
fn evt_fits_and_refuses_too_few() {
    let d = tempfile::tempdir().unwrap();
    let mut rng = common::Rng(99);
    let body: String = (0..5000)
        .map(|_| format!("{}\n", 1000.0 - 200.0 * rng.uniform().ln()))
        .collect();
    let f = write(d.path(), "s.txt", &body);
    let o = wcet(&["evt", &f, "--p", "1e-6", "--p", "1e-9"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let p6 = v["pwcet"][0]["gev"].as_f64().unwrap();
    let p9 = v["pwcet"][1]["gev"].as_f64().unwrap();
    assert!(p9 > p6 && p6 > v["max"].as_f64().unwrap(), "{p6} {p9}");
    assert!(v["samples_independence"]["ljung_box"]["verdict"].is_string());
    assert!((v["scipy_c"].as_f64().unwrap() + v["gev"]["xi"].as_f64().unwrap()).abs() < 1e-12);

    let few = write(d.path(), "few.txt", "1\n2\n3\n");
    let o = wcet(&["evt", &few]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("too few samples"), "{}", text(&o).1);
}

#[test]
fn bound_and_report_end_to_end() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    let mut input = common::input();
    let cal = write(d, "cal.json", serde_json::to_string(&input.host).unwrap());
    input.host = Default::default(); // the calibration comes from --calibration
    let inp = write(d, "input.json", serde_json::to_string(&input).unwrap());
    let o = wcet(&["bound", &inp, "--calibration", &cal]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["streams"][0]["bound_ns"], 725_380);
    let o = wcet(&["bound", &inp]);
    assert!(text(&o).1.contains("calibration lacks"), "{}", text(&o).1);

    // `wcet report` on one trace: exit code, stderr and the Markdown report.
    let out_dir = d.join("out");
    let report = |name: &str, trace: Vec<u8>| {
        let t = write(d, name, trace);
        let od = out_dir.to_string_lossy().into_owned();
        let o = wcet(&[
            "report",
            "--input",
            &inp,
            "--calibration",
            &cal,
            "--trace",
            &t,
            "--out",
            &od,
        ]);
        let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap_or_default();
        (o.status.code(), text(&o).1, md)
    };
    let none = |_: u16, _: u64| 0;

    let (code, err, md) = report(
        "good.trace",
        common::trace([3000, 300, 100], &none, &[], true),
    );
    assert_eq!(code, Some(0), "{err}");
    for f in ["report.html", "report.md", "report.json"] {
        assert!(out_dir.join(f).exists(), "{f}");
    }
    assert!(
        md.contains("ALL BOUNDS HOLD") && md.contains("Certified"),
        "{md}"
    );

    // Gaps: not certified, said why.
    let (code, err, md) = report(
        "gaps.trace",
        common::trace([3000, 300, 100], &none, &[50, 51], true),
    );
    assert_eq!(code, Some(4));
    assert!(err.contains("sequence gaps"), "{err}");
    assert!(md.contains("NOT CERTIFIED") && md.contains("sequence gaps"));

    // Cut short: not certified either.
    let (_, err, _) = report("cut.trace", common::trace([100, 10, 10], &none, &[], false));
    assert!(err.contains("incomplete"), "{err}");

    // A violation: loud, with the sample that broke the bound.
    let spike = |s: u16, q: u64| if s == 0 && q == 77 { 900_000 } else { 0 };
    let (code, err, md) = report(
        "bad.trace",
        common::trace([3000, 300, 100], &spike, &[], true),
    );
    assert_eq!(code, Some(3));
    assert!(err.contains("VIOLATION: stream `imu`"), "{err}");
    assert!(
        md.contains("VIOLATED (1 samples)") && md.contains("| imu | 77 |"),
        "{md}"
    );

    let (code, err, _) = report("junk.trace", b"not a trace at all".to_vec());
    assert_eq!(code, Some(1));
    assert!(err.contains("bad magic"), "{err}");
}

#[test]
fn calibrate_writes_a_host_description() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("cal.json");
    let o = wcet(&["calibrate", "--duration", "0.3", "-o", &f.to_string_lossy()]);
    assert!(o.status.success(), "{}", text(&o).1);
    let cal: wcet::calibrate::Calibration =
        serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    // Independent peer for the host description: uname(1).
    let uname = Command::new("uname").arg("-r").output().unwrap();
    assert_eq!(
        cal.host.kernel,
        String::from_utf8_lossy(&uname.stdout).trim()
    );
    assert!(cal.enqueue.samples > 0 && cal.fifo_wakeup.samples > 0);
    for s in [
        &cal.enqueue,
        &cal.fifo_wakeup,
        &cal.cache_line_transfer,
        &cal.futex_wakeup,
    ] {
        assert!(
            s.min_ns <= s.median_ns
                && s.median_ns <= s.p99_ns
                && s.p99_ns <= s.p9999_ns
                && s.p9999_ns <= s.max_ns,
            "{s:?}"
        );
    }
    if cal.host.cpus >= 2 {
        assert!(
            cal.cache_line_transfer.samples > 0 && cal.futex_wakeup.samples > 0,
            "{cal:?}"
        );
    } else {
        eprintln!(
            "ONE CPU ONLY: cross-core figures not measured: {:?}",
            cal.notes
        );
        assert!(!cal.notes.is_empty());
    }
    if cal.policy != "SCHED_FIFO" {
        eprintln!(
            "SCHED_FIFO refused here; the calibration says so: {:?}",
            cal.notes
        );
        assert!(cal.notes.iter().any(|n| n.contains("SCHED_FIFO")));
    }
    let o = wcet(&["calibrate", "--duration=-1"]);
    assert_eq!(o.status.code(), Some(1));
}

/// Without CAP_SYS_NICE (dropped with setpriv(1)) SCHED_FIFO is refused: the calibration still
/// runs, under SCHED_OTHER, and says so.
#[test]
fn calibrate_falls_back_when_rt_is_refused() {
    let probe = Command::new("setpriv").arg("--help").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("SETPRIV MISSING (util-linux): the RT-refused fallback is not exercised here");
        return;
    }
    let o = Command::new("setpriv")
        .args(["--bounding-set", "-sys_nice", "--inh-caps", "-sys_nice"])
        .arg(env!("CARGO_BIN_EXE_wcet"))
        .args(["calibrate", "--duration", "0.2"])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    if !o.status.success() && err.contains("setpriv") {
        eprintln!("setpriv cannot drop capabilities here ({err}); fallback not exercised");
        return;
    }
    assert!(o.status.success(), "{err}");
    let cal: wcet::calibrate::Calibration = serde_json::from_str(&out).unwrap();
    if cal.policy == "SCHED_FIFO" {
        eprintln!("SCHED_FIFO still granted without CAP_SYS_NICE (RLIMIT_RTPRIO > 0?): fallback not exercised");
        return;
    }
    assert_eq!(cal.policy, "SCHED_OTHER");
    assert!(
        cal.notes
            .iter()
            .any(|n| n.contains("refused") && n.contains("SCHED_OTHER")),
        "{:?}",
        cal.notes
    );
    assert!(err.contains("SCHED_FIFO priority 80 refused"), "{err}");
    assert!(cal.fifo_wakeup.samples > 0);
}
