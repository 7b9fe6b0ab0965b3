//! The run's latency distributions as one SVG chart (`--plot-dir`): each measured row of the
//! report is a percentile curve read from its HdrHistogram — x on a log scale of "nines" (0, 50,
//! 90, 99, 99.9 … percent), the row's maximum as the last point of each curve, y in
//! milliseconds — so a scenario's measure and its same-run baseline share one chart.
//!
//! The file carries what it draws: a `<metadata>` element holds, as JSON, every curve's points
//! (nines, percentile, ms), its colour and summary, and the chart's pixel area and axis ranges,
//! from which each `<polyline>`'s pixels map back to milliseconds.
use super::report::{Report, Row};
use super::stats::ms_at;
use anyhow::Context;
use chrono::{DateTime, Utc};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};

const WIDTH: u32 = 960;
/// The chart's height, below the header and the legend.
const CHART: u32 = 480;
const HEADER: u32 = 72;
/// One legend line per curve, above the chart (never over a curve).
const LEGEND_LINE: u32 = 18;
/// Characters of the description per header line (13 px text on a 960 px chart).
const WRAP: usize = 128;
/// Curve points per nine (x step 0.02).
const STEPS_PER_NINE: u32 = 50;
/// Distinct on white and from each other (the Tableau 10 colours).
const COLOURS: [u32; 10] = [
    0x1F77B4, 0xD62728, 0x2CA02C, 0xFF7F0E, 0x9467BD, 0x8C564B, 0xE377C2, 0x7F7F7F, 0x17BECF,
    0xBCBD22,
];

fn colour(i: usize) -> RGBColor {
    let c = COLOURS[i % COLOURS.len()];
    RGBColor((c >> 16) as u8, (c >> 8) as u8, c as u8)
}

/// One drawn curve.
#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    pub name: String,
    /// The polyline's stroke, as the SVG writes it (`#RRGGBB`).
    pub color: String,
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// `[x, percentile, ms]`: x = -log10(1 - percentile / 100); the last point is the maximum,
    /// drawn at `x_range[1]`.
    pub points: Vec<[f64; 3]>,
}

/// What the SVG's `<metadata>` says.
#[derive(Debug, Clone, Serialize)]
pub struct Drawn {
    pub scenario: String,
    pub description: String,
    pub date: String,
    /// The axes' ends in SVG pixels, `[left, top, right, bottom]`: x = 0 at `left`, `x_range[1]`
    /// at `right`, 0 ms at `bottom`, `y_range[1]` at `top`; linear in between.
    pub plot_area: [i32; 4],
    pub x_range: [f64; 2],
    pub y_range: [f64; 2],
    pub curves: Vec<Curve>,
}

/// Writes the report's plot to `dir/<scenario>.svg` (creating `dir`); its path.
pub fn write(report: &Report, dir: &Path, at: DateTime<Utc>) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{}.svg", report.name()));
    std::fs::write(&path, render(report, at)?.0)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The x of the nines scale for a percentile.
pub fn nines(percentile: f64) -> f64 {
    -(1.0 - percentile / 100.0).log10()
}

/// The percentiles a curve is drawn at: every 0.02 nine up to `top` nines, with 50 and each
/// whole nine (90, 99, 99.9 …) exactly.
fn percentiles(top: u32) -> Vec<f64> {
    let mut v: Vec<f64> = (0..=top * STEPS_PER_NINE)
        .map(|i| {
            if i % STEPS_PER_NINE == 0 {
                whole_nines(i / STEPS_PER_NINE)
            } else {
                100.0 * (1.0 - 10f64.powf(-f64::from(i) / f64::from(STEPS_PER_NINE)))
            }
        })
        .collect();
    v.push(50.0);
    v.sort_by(f64::total_cmp);
    v
}

/// 0, 90, 99, 99.9 … as the decimal literal reads (so 99 / 100 is the summary's 0.99 exactly).
fn whole_nines(k: u32) -> f64 {
    match k {
        0 => 0.0,
        1 => 90.0,
        2 => 99.0,
        k => format!("99.{}", "9".repeat(k as usize - 2))
            .parse()
            .unwrap_or(100.0),
    }
}

/// The axis label at a key point of the nines scale.
fn x_label(x: f64, x_end: f64) -> String {
    if (x - x_end).abs() < 1e-9 {
        "max".into()
    } else if (x - nines(50.0)).abs() < 1e-9 {
        "50".into()
    } else {
        whole_nines(x.round() as u32).to_string()
    }
}

/// The x axis: linear in nines from 0 to `end`, with only the given key points (labelled by
/// [`x_label`]).
struct NinesAxis {
    end: f64,
    keys: Vec<f64>,
}

impl Ranged for NinesAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        RangedCoordf64::from(0.0..self.end).map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.keys.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        0.0..self.end
    }
}

fn curve(i: usize, row: &Row, h: &hdrhistogram::Histogram<u64>, top: u32, x_end: f64) -> Curve {
    let RGBColor(r, g, b) = colour(i);
    let mut points: Vec<[f64; 3]> = percentiles(top)
        .into_iter()
        .map(|p| [nines(p), p, ms_at(h, p / 100.0)])
        .collect();
    points.push([x_end, 100.0, ms_at(h, 1.0)]);
    Curve {
        name: row.name.clone(),
        color: format!("#{r:02X}{g:02X}{b:02X}"),
        count: row.summary.count,
        p50_ms: row.summary.p50_ms,
        p99_ms: row.summary.p99_ms,
        max_ms: row.summary.max_ms,
        points,
    }
}

/// The header's description lines: wrapped at word boundaries, at most two.
fn wrap(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = vec![String::new()];
    for word in text.split_whitespace() {
        let last = lines.last_mut().expect("one line at least");
        if !last.is_empty() && last.chars().count() + 1 + word.chars().count() > WRAP {
            lines.push(word.to_owned());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    if lines.len() > 2 {
        lines.truncate(2);
        lines[1].push_str(" …");
    }
    lines
}

fn ms(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A y tick: as [`ms`], without trailing zeros (50, 2.5, 0.25).
fn axis_ms(v: f64) -> String {
    let s = ms(v);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// The SVG of the report's measured rows, and what it drew.
pub fn render(report: &Report, at: DateTime<Utc>) -> anyhow::Result<(String, Drawn)> {
    let rows: Vec<(&Row, &hdrhistogram::Histogram<u64>)> = report
        .rows
        .iter()
        .filter_map(|r| Some((r, r.histogram.as_ref().filter(|h| !h.is_empty())?)))
        .collect();
    // As many nines as the largest series resolves (at least 99.9, at most 99.999), then max.
    let most = rows.iter().map(|(r, _)| r.summary.count).max().unwrap_or(0);
    let top = ((most.max(1) as f64).log10().floor() as u32).clamp(3, 5);
    let x_end = f64::from(top) + 0.5;
    let curves: Vec<Curve> = rows
        .iter()
        .enumerate()
        .map(|(i, (r, h))| curve(i, r, h, top, x_end))
        .collect();
    let y_max = curves.iter().map(|c| c.max_ms).fold(0.0, f64::max);
    let y_end = (y_max * 1.08).max(0.01);
    let date = at.format("%Y-%m-%d %H:%M UTC").to_string();
    let mut svg = String::new();
    let area = draw(&mut svg, report, &date, &curves, top, x_end, y_end)
        .map_err(|e| anyhow::anyhow!("drawing the plot: {e}"))?;
    let drawn = Drawn {
        scenario: report.name(),
        description: report.description.clone(),
        date,
        plot_area: area,
        x_range: [0.0, x_end],
        y_range: [0.0, y_end],
        curves,
    };
    Ok((annotate(&svg, report, &drawn)?, drawn))
}

type DrawResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn draw(
    svg: &mut String,
    report: &Report,
    date: &str,
    curves: &[Curve],
    top: u32,
    x_end: f64,
    y_end: f64,
) -> DrawResult<[i32; 4]> {
    let legend_height = LEGEND_LINE * curves.len() as u32 + 8;
    let height = HEADER + legend_height + CHART;
    let root = SVGBackend::with_string(svg, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (header, rest) = root.split_vertically(HEADER);
    let (legend, body) = rest.split_vertically(legend_height);
    let title = format!("{} — {date}", report.name());
    header.draw(&Text::new(
        title,
        (16, 10),
        ("sans-serif", 20).into_font().style(FontStyle::Bold),
    ))?;
    for (i, line) in wrap(&report.description).into_iter().enumerate() {
        header.draw(&Text::new(
            line,
            (16, 38 + 17 * i as i32),
            ("sans-serif", 13).into_font(),
        ))?;
    }
    let mut keys: Vec<f64> = (0..=top).map(f64::from).collect();
    keys.push(nines(50.0));
    keys.push(x_end);
    let mut chart = ChartBuilder::on(&body)
        .margin_left(12)
        .margin_right(24)
        .margin_bottom(8)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(NinesAxis { end: x_end, keys }, 0f64..y_end)?;
    let label = |x: &f64| x_label(*x, x_end);
    chart
        .configure_mesh()
        .x_desc("percentile (log scale: 0, 50, 90, 99, 99.9 …), then the maximum")
        .y_desc("latency (ms)")
        .x_label_formatter(&label)
        .y_label_formatter(&|v| axis_ms(*v))
        .light_line_style(WHITE)
        .draw()?;
    for (i, c) in curves.iter().enumerate() {
        let colour = colour(i);
        let points = c.points.iter().map(|p| (p[0], p[2]));
        chart.draw_series(LineSeries::new(points, colour.stroke_width(2)))?;
        let y = (LEGEND_LINE * i as u32 + LEGEND_LINE / 2) as i32;
        legend.draw(&Rectangle::new(
            [(84, y - 5), (100, y + 5)],
            colour.filled(),
        ))?;
        legend.draw(&Text::new(
            format!(
                "{} — n {}, p50 {} ms, p99 {} ms, max {} ms",
                c.name,
                c.count,
                ms(c.p50_ms),
                ms(c.p99_ms),
                ms(c.max_ms)
            ),
            (108, y - 7),
            ("sans-serif", 13).into_font(),
        ))?;
    }
    // Where the axes' ends land: the pixels a reader maps the polylines back with.
    let (left, bottom) = chart.backend_coord(&(0.0, 0.0));
    let (right, top) = chart.backend_coord(&(x_end, y_end));
    root.present()?;
    Ok([left, top, right, bottom])
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Adds a `<title>` and the `<metadata>` (the drawn data as JSON) after the `<svg>` tag.
fn annotate(svg: &str, report: &Report, drawn: &Drawn) -> anyhow::Result<String> {
    let open = svg
        .find(">\n")
        .context("the SVG backend wrote no <svg> tag")?
        + 2;
    let title = format!("{} — {}: {}", report.name(), drawn.date, report.description);
    Ok(format!(
        "{}<title>{}</title>\n<metadata id=\"tablecast-latency\">{}</metadata>\n{}",
        &svg[..open],
        xml_escape(&title),
        xml_escape(&serde_json::to_string(drawn)?),
        &svg[open..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_nines_scale_has_its_whole_nines_and_the_median_exactly() {
        assert_eq!(whole_nines(1), 90.0);
        assert_eq!(whole_nines(2), 99.0);
        assert_eq!(whole_nines(3), 99.9);
        assert_eq!(whole_nines(5), 99.999);
        assert!((nines(99.9) - 3.0).abs() < 1e-9);
        let p = percentiles(3);
        assert_eq!(p.first(), Some(&0.0));
        assert_eq!(p.last(), Some(&99.9));
        assert!(p.contains(&50.0) && p.contains(&99.0));
        assert!(p.windows(2).all(|w| w[0] < w[1]));
        let labels: Vec<String> = [0.0, nines(50.0), 1.0, 2.0, 3.0, 4.0, 4.5]
            .iter()
            .map(|x| x_label(*x, 4.5))
            .collect();
        assert_eq!(labels, ["0", "50", "90", "99", "99.9", "99.99", "max"]);
    }

    #[test]
    fn each_curve_reads_the_summary_numbers_from_its_histogram() {
        let mut r = Report::new("t", "1 to 1000 ms".into());
        let v: Vec<Duration> = (1..=1000).map(Duration::from_millis).collect();
        let s = r.latencies("one to a thousand", &v, None);
        r.latencies("nothing measured", &[], None);
        let (svg, drawn) = render(&r, Utc::now()).unwrap();
        assert_eq!(drawn.curves.len(), 1, "an empty row draws no curve");
        let c = &drawn.curves[0];
        let at = |p: f64| c.points.iter().find(|q| q[1] == p).unwrap()[2];
        assert_eq!((at(50.0), at(99.0)), (s.p50_ms, s.p99_ms));
        assert_eq!(c.points.last().unwrap()[2], s.max_ms);
        assert_eq!(c.points.last().unwrap()[0], drawn.x_range[1]);
        assert!(c.points.windows(2).all(|w| w[0][2] <= w[1][2]));
        let stroke = format!("stroke=\"{}\"", c.color);
        let lines = svg.lines().filter(|l| l.starts_with("<polyline"));
        assert_eq!(lines.filter(|l| l.contains(&stroke)).count(), 1);
        assert!(svg.contains("one to a thousand — n 1000"));
    }

    #[test]
    fn long_descriptions_wrap_to_two_lines() {
        let w = wrap(&"word ".repeat(100));
        assert_eq!(w.len(), 2);
        assert!(w[0].chars().count() <= WRAP && w[1].ends_with('…'));
        assert_eq!(wrap("short"), ["short"]);
        let ticks: Vec<String> = [0.0, 0.25, 2.5, 50.0, 300.0].map(axis_ms).into();
        assert_eq!(ticks, ["0", "0.25", "2.5", "50", "300"]);
    }
}
