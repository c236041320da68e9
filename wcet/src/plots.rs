//! SVG plots for the report, drawn with plotters' SVG backend into strings.

use crate::analyze::Bucket;
use crate::bound::StreamBound;
use plotters::prelude::*;

const W: u32 = 720;

type DrawErr = DrawingAreaErrorKind<std::io::Error>;
type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// Runs `draw` on a `W` × `h` SVG canvas and returns the SVG text. A drawing error leaves the
/// plot incomplete; the report still has every number in its tables.
fn svg(h: u32, draw: impl FnOnce(&Area<'_>) -> Result<(), DrawErr>) -> String {
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, (W, h)).into_drawing_area();
        let _ = draw(&root);
        let _ = root.present();
    }
    s
}
const TERM_COLOURS: [RGBColor; 6] = [
    RGBColor(78, 121, 167),
    RGBColor(242, 142, 43),
    RGBColor(225, 87, 89),
    RGBColor(176, 122, 161),
    RGBColor(118, 183, 178),
    RGBColor(89, 161, 79),
];

fn us(ns: f64) -> f64 {
    ns / 1000.0
}

/// Horizontal stacked bars of the terms, one bar per stream (µs).
pub fn stacked_terms(bounds: &[&StreamBound]) -> String {
    svg(90 + 40 * bounds.len() as u32, |root| {
        draw_terms(root, bounds)
    })
}

fn draw_terms(root: &Area<'_>, bounds: &[&StreamBound]) -> Result<(), DrawErr> {
    root.fill(&WHITE)?;
    let xmax = bounds
        .iter()
        .map(|b| us(b.bound_ns as f64))
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.05;
    let n = bounds.len().max(1);
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Bound breakdown: Δirq + t_enq + T_sched + RT throttle + backlog + t_cc (µs)",
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(110)
        .build_cartesian_2d(0.0..xmax, -0.5..n as f64 - 0.5)?;
    let names: Vec<String> = bounds.iter().map(|b| b.name.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|y| {
            // Bar i is centred on y = i; label only the ticks that fall there.
            let i = y.round();
            if (y - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_desc("µs")
        .draw()?;
    for (i, b) in bounds.iter().enumerate() {
        let mut x = 0.0;
        for (k, (_, v)) in b.terms.named().iter().enumerate() {
            let w = us(*v as f64);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x, i as f64 - 0.3), (x + w, i as f64 + 0.3)],
                TERM_COLOURS[k].filled(),
            )))?;
            x += w;
        }
    }
    for (k, (name, _)) in bounds
        .first()
        .map(|b| b.terms.named())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        chart
            .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())?
            .label(*name)
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 10, y + 5)], TERM_COLOURS[k].filled())
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Latency histogram with a logarithmic count axis and the bound as a vertical line.
pub fn histogram(title: &str, buckets: &[Bucket], bound_ns: Option<u64>) -> String {
    svg(300, |root| draw_histogram(root, title, buckets, bound_ns))
}

fn draw_histogram(
    root: &Area<'_>,
    title: &str,
    buckets: &[Bucket],
    bound_ns: Option<u64>,
) -> Result<(), DrawErr> {
    root.fill(&WHITE)?;
    let top = buckets
        .iter()
        .map(|b| b.upper_ns)
        .max()
        .unwrap_or(1)
        .max(bound_ns.unwrap_or(0)) as f64;
    let ymax = buckets.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64 * 2.0;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 15))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (1.0..top.max(2.0) * 1.1).log_scale(),
            (0.5..ymax).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("latency (ns, log)")
        .y_desc("count (log)")
        .draw()?;
    chart.draw_series(buckets.iter().filter(|b| b.count > 0).map(|b| {
        Rectangle::new(
            [
                ((b.lower_ns.max(1)) as f64, 0.5),
                (b.upper_ns.max(2) as f64, b.count as f64),
            ],
            BLUE.mix(0.6).filled(),
        )
    }))?;
    if let Some(bound) = bound_ns {
        chart
            .draw_series(LineSeries::new(
                [(bound as f64, 0.5), (bound as f64, ymax)],
                RED.stroke_width(2),
            ))?
            .label("bound")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], RED));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    Ok(())
}

/// Exceedance probability curve: empirical (from sorted samples) and the fitted model, with the
/// bound drawn as a vertical line.
pub fn exceedance(
    title: &str,
    sorted: &[u64],
    model: &[(f64, f64)],
    bound_ns: Option<u64>,
) -> String {
    svg(300, |root| {
        draw_exceedance(root, title, sorted, model, bound_ns)
    })
}

fn draw_exceedance(
    root: &Area<'_>,
    title: &str,
    sorted: &[u64],
    model: &[(f64, f64)],
    bound_ns: Option<u64>,
) -> Result<(), DrawErr> {
    root.fill(&WHITE)?;
    let n = sorted.len().max(1) as f64;
    let xmax = model
        .iter()
        .map(|p| p.0)
        .chain(sorted.last().map(|&v| v as f64))
        .chain(bound_ns.map(|b| b as f64))
        .fold(1.0, f64::max)
        * 1.05;
    let xmin = sorted.first().map_or(0.0, |&v| v as f64);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 15))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(xmin..xmax, (1e-12..1.0).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("latency (ns)")
        .y_desc("P(latency > x)")
        .y_label_formatter(&|y| format!("{y:.0e}"))
        .draw()?;
    // Empirical: at most ~400 points, always including the tail.
    let step = (sorted.len() / 400).max(1);
    let emp = sorted
        .iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0 || *i + 50 >= sorted.len())
        .map(|(i, &v)| (v as f64, ((sorted.len() - i) as f64 / n).max(1e-12)));
    chart
        .draw_series(LineSeries::new(emp, BLUE.stroke_width(2)))?
        .label("observed")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], BLUE));
    chart
        .draw_series(LineSeries::new(
            model.iter().map(|&(x, p)| (x, p.clamp(1e-12, 1.0))),
            GREEN.stroke_width(2),
        ))?
        .label("GEV model (per activation)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], GREEN));
    if let Some(b) = bound_ns {
        chart
            .draw_series(LineSeries::new(
                [(b as f64, 1e-12), (b as f64, 1.0)],
                RED.stroke_width(2),
            ))?
            .label("bound")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], RED));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
