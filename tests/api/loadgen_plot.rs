//! `loadgen … --plot-dir`: a small stampede writes one well-formed SVG whose lines are the
//! distributions the report measured — one polyline per row, labelled with the row's name, each
//! pixel mapping back to the curve's milliseconds, the curve's percentiles and maximum equal to
//! the report's.
use super::loadgen::loadgen;
use crate::kit::app::*;
use serde_json::Value;

/// Every tag closed in order, one root element, and only the XML entities.
fn assert_well_formed(svg: &str) {
    let mut open: Vec<&str> = Vec::new();
    let mut roots = 0;
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        let text = &rest[..start];
        assert!(!text.contains('>'), "a stray '>' in text: {text:?}");
        for (i, _) in text.match_indices('&') {
            let entity = &text[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                    .iter()
                    .any(|e| entity.starts_with(e)),
                "an unknown entity in {entity:?}"
            );
        }
        let end = start + rest[start..].find('>').expect("every tag ends");
        let tag = &rest[start + 1..end];
        assert!(!tag.contains('<'), "a '<' inside the tag {tag:?}");
        assert_eq!(
            tag.matches('"').count() % 2,
            0,
            "unbalanced quotes in {tag:?}"
        );
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(open.pop(), Some(name.trim()), "closing {name}");
        } else if !tag.ends_with('/') {
            if open.is_empty() {
                roots += 1;
            }
            open.push(tag.split_whitespace().next().expect("a tag name"));
        } else if open.is_empty() {
            roots += 1;
        }
        rest = &rest[end + 1..];
    }
    assert!(open.is_empty(), "unclosed: {open:?}");
    assert!(rest.trim().is_empty(), "text after the root: {rest:?}");
    assert_eq!(roots, 1, "one root element");
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The contents of the `<text>` elements, unescaped.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text ")
        .skip(1)
        .map(|t| {
            let body = &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()];
            unescape(body.trim())
        })
        .collect()
}

/// The `(x, y)` pixels of the one polyline stroked with `color`.
fn polyline(svg: &str, color: &str) -> Vec<(i32, i32)> {
    let stroke = format!("stroke=\"{color}\"");
    let lines: Vec<&str> = svg
        .lines()
        .filter(|l| l.starts_with("<polyline") && l.contains(&stroke))
        .collect();
    assert_eq!(lines.len(), 1, "one polyline stroked {color}");
    let points = lines[0].split("points=\"").nth(1).unwrap();
    points[..points.find('"').unwrap()]
        .split_whitespace()
        .map(|p| {
            let (x, y) = p.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stampede_plot_draws_the_distributions_the_report_measured() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let plots = dir.path().join("plots"); // created by the run
    let r = loadgen(
        &app,
        &[
            "stampede",
            "--diners",
            "60",
            "--tables",
            "2",
            "--plot-dir",
            plots.to_str().unwrap(),
        ],
    )
    .await;
    assert!(r.invariants_hold(), "{}", r.table());
    let svg = std::fs::read_to_string(plots.join("stampede.svg")).expect("the plot is written");
    assert!(svg.starts_with("<svg ") && svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    assert_well_formed(&svg);
    assert!(
        svg.contains("<title>stampede — "),
        "titled with the scenario"
    );
    assert!(
        svg.contains("60 diners for the last 2 table(s)"),
        "and its size"
    );
    let texts = texts(&svg);
    let has = |t: &str| texts.iter().any(|x| x == t);
    assert!(
        has("latency (ms)") && has("max") && has("99.9"),
        "axes labelled"
    );

    let meta = svg
        .split("<metadata id=\"tablecast-latency\">")
        .nth(1)
        .unwrap();
    let meta: Value = serde_json::from_str(&unescape(&meta[..meta.find("</metadata>").unwrap()]))
        .expect("the drawn data is JSON");
    let [left, top, right, bottom] =
        serde_json::from_value::<[i32; 4]>(meta["plot_area"].clone()).unwrap();
    let x_end = meta["x_range"][1].as_f64().unwrap();
    let y_end = meta["y_range"][1].as_f64().unwrap();
    let curves = meta["curves"].as_array().unwrap();
    // Every row measured something here: healthz, 58 losers, 2 winners, in the report's order.
    let names: Vec<&str> = curves.iter().map(|c| c["name"].as_str().unwrap()).collect();
    let rows: Vec<&str> = r.rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, rows);
    assert_eq!(
        names,
        [
            "GET /healthz (baseline)",
            "hold: losers (409)",
            "hold: winners (201)"
        ]
    );
    let px_per_ms = f64::from(bottom - top) / y_end;
    for c in curves {
        let name = c["name"].as_str().unwrap();
        let row = &r.row_named(name).unwrap().summary;
        assert_eq!(c["count"].as_u64(), Some(row.count as u64), "{name}");
        let label = format!("{name} — n {}, p50 ", row.count);
        assert!(
            texts.iter().any(|t| t.starts_with(&label)),
            "{name}'s label"
        );
        // The curve is the row's histogram: its 50th and 99th percentile and its last point
        // (the maximum, at the right edge) are the report's numbers.
        let points: Vec<[f64; 3]> = serde_json::from_value(c["points"].clone()).unwrap();
        let at = |p: f64| points.iter().find(|q| q[1] == p).unwrap()[2];
        assert_eq!((at(50.0), at(99.0)), (row.p50_ms, row.p99_ms), "{name}");
        assert_eq!(
            *points.last().unwrap(),
            [x_end, 100.0, row.max_ms],
            "{name}"
        );
        assert!(points
            .windows(2)
            .all(|w| w[0][0] < w[1][0] && w[0][2] <= w[1][2]));
        // The drawn line is those points: each pixel is the point's place, to the pixel.
        let drawn = polyline(&svg, c["color"].as_str().unwrap());
        assert_eq!(drawn.len(), points.len(), "{name}");
        for ((px, py), [x, _, ms]) in drawn.iter().zip(&points) {
            let want_x = f64::from(left) + x / x_end * f64::from(right - left);
            let want_y = f64::from(bottom) - ms * px_per_ms;
            assert!(
                (f64::from(*px) - want_x).abs() <= 1.0,
                "{name}: x {px} for {x} in {left}..{right} of {x_end}"
            );
            assert!(
                (f64::from(*py) - want_y).abs() <= 1.0,
                "{name}: y {py} for {ms} ms"
            );
        }
        // So its highest pixel reads back as the reported maximum, within a pixel's worth.
        let highest = drawn.iter().map(|p| p.1).min().unwrap();
        let read_back = f64::from(bottom - highest) / px_per_ms;
        assert!(
            (read_back - row.max_ms).abs() <= 1.0 / px_per_ms,
            "{name}: drawn max {read_back} ms, reported {} ms",
            row.max_ms
        );
    }
}
