//! GEV/GPD CDF, quantiles and maximum-likelihood fits, the χ² survival function and the normal
//! tail against SciPy (an independent implementation) on the same, deterministically generated
//! data. Needs `python3` with scipy and numpy (`pip install scipy numpy`).

use std::io::Write;
use std::process::Command;
use wcet::evt::{ljung_box, Gev, Gpd};
use wcet::numeric::{chi2_sf, normal_two_sided_p};

/// xorshift64*: deterministic uniforms in (0, 1).
struct Rng(u64);
impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        (v as f64 + 0.5) / (1u64 << 53) as f64
    }
}

fn python(script: &str, data: &[&[f64]]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let mut args = Vec::new();
    for (i, d) in data.iter().enumerate() {
        let path = dir.path().join(format!("data{i}.txt"));
        let mut f = std::fs::File::create(&path).unwrap();
        for x in *d {
            writeln!(f, "{x:.17e}").unwrap();
        }
        args.push(path);
    }
    let probe = Command::new("python3")
        .args(["-c", "import scipy, numpy"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "python3 cannot import scipy/numpy — run `pip install scipy numpy`: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("python3 not found ({e}); install python3 and `pip install scipy numpy`"),
    }
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn f(v: &serde_json::Value, k: &str) -> f64 {
    v[k].as_f64()
        .unwrap_or_else(|| panic!("missing {k} in {v}"))
}

fn close(a: f64, b: f64, rel: f64, what: &str) {
    assert!(
        (a - b).abs() <= rel * b.abs().max(1.0),
        "{what}: ours {a}, scipy {b}"
    );
}

#[test]
fn gev_cdf_quantile_and_fit_match_scipy() {
    let truth = Gev {
        mu: 1000.0,
        sigma: 50.0,
        xi: 0.1,
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let data: Vec<f64> = (0..1500).map(|_| truth.quantile(rng.uniform())).collect();
    let ours = Gev::fit(&data).unwrap();
    let script = r#"
import sys, json, numpy as np
from scipy.stats import genextreme as g
x = np.loadtxt(sys.argv[1])
c, loc, scale = g.fit(x)
ll = float(np.sum(g.logpdf(x, c, loc, scale)))
print(json.dumps({"c": c, "loc": loc, "scale": scale, "ll": ll,
  "cdf": [float(g.cdf(v, -0.1, 1000, 50)) for v in (900.0, 1000.0, 1200.0, 1600.0)],
  "ppf": [float(g.ppf(p, -0.1, 1000, 50)) for p in (0.01, 0.5, 0.99, 0.999999)],
  "cdf_neg": float(g.cdf(1100.0, 0.3, 1000, 50)), "ppf_neg": float(g.ppf(0.9, 0.3, 1000, 50))}))
"#;
    let s = python(script, &[&data]);
    for (i, x) in [900.0, 1000.0, 1200.0, 1600.0].iter().enumerate() {
        close(
            truth.cdf(*x),
            s["cdf"][i].as_f64().unwrap(),
            1e-10,
            "GEV cdf",
        );
    }
    for (i, p) in [0.01, 0.5, 0.99, 0.999999].iter().enumerate() {
        close(
            truth.quantile(*p),
            s["ppf"][i].as_f64().unwrap(),
            1e-9,
            "GEV ppf",
        );
    }
    let bounded = Gev {
        mu: 1000.0,
        sigma: 50.0,
        xi: -0.3,
    }; // scipy c = 0.3
    close(
        bounded.cdf(1100.0),
        f(&s, "cdf_neg"),
        1e-10,
        "GEV cdf, ξ < 0",
    );
    close(
        bounded.quantile(0.9),
        f(&s, "ppf_neg"),
        1e-9,
        "GEV ppf, ξ < 0",
    );
    // The fits: our likelihood is at least SciPy's, and the parameters agree (c = −ξ).
    let scipy = Gev {
        mu: f(&s, "loc"),
        sigma: f(&s, "scale"),
        xi: -f(&s, "c"),
    };
    assert!(
        ours.log_likelihood(&data) >= f(&s, "ll") - 1e-3,
        "ours {ours:?} scipy {scipy:?}"
    );
    close(
        ours.log_likelihood(&data),
        scipy.log_likelihood(&data),
        1e-9,
        "our log-likelihood at scipy's optimum",
    );
    close(ours.mu, scipy.mu, 2e-3, "GEV μ");
    close(ours.sigma, scipy.sigma, 1e-2, "GEV σ");
    assert!(
        (ours.xi - scipy.xi).abs() < 0.01,
        "GEV ξ: ours {ours:?} scipy {scipy:?}"
    );
}

#[test]
fn gpd_cdf_quantile_and_fit_match_scipy() {
    let truth = Gpd {
        sigma: 20.0,
        xi: 0.2,
    };
    let mut rng = Rng(42);
    let data: Vec<f64> = (0..1000)
        .map(|_| truth.quantile_exceed(rng.uniform()))
        .collect();
    let ours = Gpd::fit(&data).unwrap();
    let script = r#"
import sys, json, numpy as np
from scipy.stats import genpareto as g
y = np.loadtxt(sys.argv[1])
c, loc, scale = g.fit(y, floc=0)
ll = float(np.sum(g.logpdf(y, c, 0, scale)))
print(json.dumps({"c": c, "scale": scale, "ll": ll,
  "cdf": [float(g.cdf(v, 0.2, 0, 20)) for v in (1.0, 20.0, 300.0)],
  "isf": [float(g.isf(q, 0.2, 0, 20)) for q in (0.5, 1e-3, 1e-9)],
  "cdf_neg": float(g.cdf(30.0, -0.25, 0, 20))}))
"#;
    let s = python(script, &[&data]);
    for (i, y) in [1.0, 20.0, 300.0].iter().enumerate() {
        close(
            truth.cdf(*y),
            s["cdf"][i].as_f64().unwrap(),
            1e-10,
            "GPD cdf",
        );
    }
    for (i, q) in [0.5, 1e-3, 1e-9].iter().enumerate() {
        close(
            truth.quantile_exceed(*q),
            s["isf"][i].as_f64().unwrap(),
            1e-9,
            "GPD isf",
        );
    }
    close(
        Gpd {
            sigma: 20.0,
            xi: -0.25,
        }
        .cdf(30.0),
        f(&s, "cdf_neg"),
        1e-10,
        "GPD cdf, ξ < 0",
    );
    let scipy = Gpd {
        sigma: f(&s, "scale"),
        xi: f(&s, "c"),
    };
    assert!(
        ours.log_likelihood(&data) >= f(&s, "ll") - 1e-3,
        "ours {ours:?} scipy {scipy:?}"
    );
    close(ours.sigma, scipy.sigma, 1e-2, "GPD σ");
    assert!(
        (ours.xi - scipy.xi).abs() < 0.01,
        "GPD ξ: ours {ours:?} scipy {scipy:?}"
    );
}

#[test]
fn ljung_box_and_tail_probabilities_match_scipy() {
    // An AR(1) series: clearly dependent.
    let mut rng = Rng(7);
    let mut x = vec![0.0f64; 500];
    for i in 1..x.len() {
        x[i] = 0.5 * x[i - 1] + rng.uniform() - 0.5;
    }
    let script = r#"
import sys, json, numpy as np
from scipy.stats import chi2, norm
x = np.loadtxt(sys.argv[1]); n = len(x); h = 10
d = x - x.mean(); c0 = np.sum(d * d)
q = n * (n + 2) * sum((np.sum(d[k:] * d[:-k]) / c0) ** 2 / (n - k) for k in range(1, h + 1))
print(json.dumps({"q": q, "p": float(chi2.sf(q, h)), "chi2": float(chi2.sf(7.3, 4)),
  "chi2_far": float(chi2.sf(60.0, 20)), "norm": float(2 * norm.sf(2.7))}))
"#;
    let s = python(script, &[&x]);
    let lb = ljung_box(&x, 10);
    close(lb.statistic, f(&s, "q"), 1e-9, "Ljung-Box Q");
    close(lb.p_value, f(&s, "p"), 1e-6, "Ljung-Box p");
    assert!(!lb.independent, "{lb:?}");
    close(chi2_sf(7.3, 4.0), f(&s, "chi2"), 1e-10, "chi2 sf");
    close(
        chi2_sf(60.0, 20.0),
        f(&s, "chi2_far"),
        1e-8,
        "chi2 sf, far tail",
    );
    close(
        normal_two_sided_p(2.7),
        f(&s, "norm"),
        1e-9,
        "normal two-sided p",
    );
}
