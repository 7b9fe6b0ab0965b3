//! Reading the server's Prometheus text (`GET /metrics`).

/// `GET {base}/metrics`.
pub async fn scrape(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("the metrics text")
}

/// The sum of the samples of `name` (every label set, or those carrying each `(label, value)`
/// of `labels`).
pub fn sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with([' ', '{']))
        })
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_the_samples_of_a_name_and_its_label_sets() {
        let text = "# HELP x_total X\n# TYPE x_total counter\nx_total{a=\"1\",b=\"2\"} 3\n\
                    x_total{a=\"1\",b=\"3\"} 4\nx_total_more 100\nx_total 5\n";
        assert_eq!(super::sum(text, "x_total", &[]), 12.0);
        assert_eq!(super::sum(text, "x_total", &[("a", "1")]), 7.0);
        assert_eq!(super::sum(text, "x_total", &[("a", "1"), ("b", "3")]), 4.0);
        assert_eq!(super::sum(text, "y_total", &[]), 0.0);
    }
}
