//! Trend charts as inline SVG, drawn on the server (pure): no script and no chart library in the
//! browser, and a chart is as testable as any other text.

use std::fmt::Write;

/// One named series of daily values, drawn in `colour`.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub colour: &'static str,
    pub values: Vec<f64>,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 10.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A round number at or above `max`, so the axis reads well.
fn axis_max(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|step| step * magnitude)
        .find(|candidate| *candidate >= max)
        .unwrap_or(10.0 * magnitude)
}

/// The frame: title, y-axis labels (0 and `y_max`), and every few day labels along the bottom.
fn open(out: &mut String, title: &str, days: &[String], y_max: f64) {
    let plot_bottom = HEIGHT - BOTTOM;
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" class="chart"><title>{title}</title><line x1="{LEFT}" y1="{plot_bottom}" x2="{WIDTH}" y2="{plot_bottom}" stroke="#8c959f"/><text x="{x}" y="{top}" font-size="10" text-anchor="end">{y_max}</text><text x="{x}" y="{plot_bottom}" font-size="10" text-anchor="end">0</text>"##,
        title = escape(title),
        x = LEFT - 4.0,
        top = TOP + 8.0,
    );
    let every = (days.len() / 6).max(1);
    for (i, day) in days.iter().enumerate().step_by(every) {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle">{}</text>"#,
            x_of(i, days.len()),
            HEIGHT - 6.0,
            escape(day)
        );
    }
}

/// The horizontal centre of day `i` of `n`.
fn x_of(i: usize, n: usize) -> f64 {
    let slot = (WIDTH - LEFT) / n.max(1) as f64;
    LEFT + slot * (i as f64 + 0.5)
}

fn y_of(value: f64, y_max: f64) -> f64 {
    let plot = HEIGHT - BOTTOM - TOP;
    HEIGHT - BOTTOM - plot * (value / y_max).clamp(0.0, 1.0)
}

fn legend(out: &mut String, series: &[Series]) {
    out.push_str(r#"<p class="legend">"#);
    for s in series {
        let _ = write!(
            out,
            r#"<span><i style="background:{}"></i>{}</span> "#,
            s.colour,
            escape(&s.name)
        );
    }
    out.push_str("</p>");
}

/// Lines over the days, one per series, on a fixed scale (`y_max`, e.g. 100 for scores) or one
/// fitted to the data. A day without data (`NaN`) breaks the line.
pub fn line_chart(title: &str, days: &[String], series: &[Series], y_max: Option<f64>) -> String {
    let y_max = y_max.unwrap_or_else(|| {
        axis_max(
            series
                .iter()
                .flat_map(|s| s.values.iter().copied())
                .filter(|v| v.is_finite())
                .fold(0.0, f64::max),
        )
    });
    let mut out = String::new();
    open(&mut out, title, days, y_max);
    for s in series {
        let mut path = String::new();
        let mut dots = String::new();
        let point = |i: usize| {
            let value = s.values[i];
            value
                .is_finite()
                .then(|| (x_of(i, days.len()), y_of(value, y_max)))
        };
        for i in 0..s.values.len() {
            let Some((x, y)) = point(i) else { continue };
            let joined_before = i > 0 && point(i - 1).is_some();
            let joined_after = i + 1 < s.values.len() && point(i + 1).is_some();
            let command = if joined_before { 'L' } else { 'M' };
            let _ = write!(path, "{command}{x:.1} {y:.1} ");
            // A day with no neighbour is a path of one move, which draws nothing: mark it.
            if !joined_before && !joined_after {
                let _ = write!(
                    dots,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{}"/>"#,
                    s.colour
                );
            }
        }
        let _ = write!(
            out,
            r#"<path d="{}" fill="none" stroke="{}" stroke-width="2"/>{dots}"#,
            path.trim_end(),
            s.colour
        );
    }
    out.push_str("</svg>");
    legend(&mut out, series);
    out
}

/// One bar per day, its series stacked in order.
pub fn stacked_bars(title: &str, days: &[String], series: &[Series]) -> String {
    let totals: Vec<f64> = (0..days.len())
        .map(|i| {
            series
                .iter()
                .filter_map(|s| s.values.get(i))
                .filter(|v| v.is_finite())
                .sum()
        })
        .collect();
    let y_max = axis_max(totals.iter().copied().fold(0.0, f64::max));
    let mut out = String::new();
    open(&mut out, title, days, y_max);
    let bar = ((WIDTH - LEFT) / days.len().max(1) as f64 * 0.8).max(1.0);
    for i in 0..days.len() {
        let mut base = 0.0;
        for s in series {
            let value = s
                .values
                .get(i)
                .copied()
                .filter(|v| v.is_finite() && *v > 0.0);
            let Some(value) = value else { continue };
            let (top, bottom) = (y_of(base + value, y_max), y_of(base, y_max));
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{top:.1}" width="{bar:.1}" height="{:.1}" fill="{}"><title>{}: {} {value}</title></rect>"#,
                x_of(i, days.len()) - bar / 2.0,
                bottom - top,
                s.colour,
                escape(&days[i]),
                escape(&s.name),
            );
            base += value;
        }
    }
    out.push_str("</svg>");
    legend(&mut out, series);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(n: usize) -> Vec<String> {
        (1..=n).map(|d| format!("2026-03-{d:02}")).collect()
    }

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(axis_max(0.0), 1.0);
        assert_eq!(axis_max(3.0), 5.0);
        assert_eq!(axis_max(17.0), 20.0);
        assert_eq!(axis_max(100.0), 100.0);
        assert_eq!(axis_max(101.0), 200.0);
    }

    #[test]
    fn a_score_line_with_a_gap() {
        let series = [Series {
            name: "average score".into(),
            colour: "#0969da",
            values: vec![90.0, 80.0, f64::NAN, 70.0],
        }];
        insta::assert_snapshot!(line_chart("Score", &days(4), &series, Some(100.0)));
    }

    #[test]
    fn stacked_violations_per_tier() {
        let series = [
            Series {
                name: "BLOCK".into(),
                colour: "#cf222e",
                values: vec![1.0, 0.0, 2.0],
            },
            Series {
                name: "<WARNING>".into(),
                colour: "#bf8700",
                values: vec![3.0, 1.0, 0.0],
            },
        ];
        let svg = stacked_bars("Violations", &days(3), &series);
        assert!(svg.contains("&lt;WARNING&gt;") && !svg.contains("<WARNING>"));
        insta::assert_snapshot!(svg);
    }

    /// A new installation has one day of data: a path of a single move draws nothing, so the
    /// day must still show as a mark.
    #[test]
    fn one_day_of_data_is_drawn() {
        let series = [Series {
            name: "average score".into(),
            colour: "#0969da",
            values: vec![f64::NAN, f64::NAN, 85.0],
        }];
        let svg = line_chart("Score", &days(3), &series, Some(100.0));
        assert_eq!(svg.matches("<circle").count(), 1, "{svg}");
        assert!(svg.contains(r#"cx="606.7""#), "{svg}");
    }
}
