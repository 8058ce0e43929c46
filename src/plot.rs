//! A tiny, dependency-free SVG line-chart writer.
//!
//! `vssa bench recompile` draws latency curves into `docs/`; a plotting
//! crate would be a heavy dependency for a handful of charts, so this module
//! writes the SVG text itself. The output is a standalone SVG (no embedded
//! fonts, no scripts) that browsers and GitHub's Markdown renderer show as is.
//!
//! Bad input never panics and never leaks `NaN`/`inf` into the file: points
//! that cannot be drawn are skipped, degenerate ranges are padded, and the
//! same chart always renders to the same bytes so regenerated docs only
//! change when the data does.

use std::fmt::Write as _;

/// Canvas width in SVG user units (pixels).
const WIDTH: f64 = 720.0;
/// Canvas height in SVG user units (pixels).
const HEIGHT: f64 = 440.0;
/// Plot area: left edge (room for y tick labels and the y axis label).
const PLOT_LEFT: f64 = 72.0;
/// Plot area: right edge (the legend sits to its right).
const PLOT_RIGHT: f64 = 540.0;
/// Plot area: top edge (below the title).
const PLOT_TOP: f64 = 44.0;
/// Plot area: bottom edge (room for x tick labels and the x axis label).
const PLOT_BOTTOM: f64 = 380.0;
/// Legend box left edge.
const LEGEND_LEFT: f64 = 554.0;
/// Legend box width.
const LEGEND_WIDTH: f64 = 156.0;
/// Height of one legend row.
const LEGEND_ROW: f64 = 18.0;
/// Legend names longer than this are cut with an ellipsis so they stay in
/// the box (the font width is unknown, so this is an estimate for 11px).
const LEGEND_MAX_CHARS: usize = 19;
/// Largest number of legend rows drawn; more series get a "+N more" row so
/// the legend never runs off the canvas.
const LEGEND_MAX_ROWS: usize = 17;
/// Magnitudes above this are treated like non-finite values: keeping them
/// out means range arithmetic (`hi - lo`, tick steps) can never overflow.
const MAX_MAGNITUDE: f64 = 1e300;
/// Target number of ticks on a linear axis.
const LINEAR_TICKS: f64 = 5.0;
/// Largest number of decade ticks on a log axis; wider ranges label every
/// n-th decade.
const MAX_LOG_TICKS: i32 = 10;
/// Log axes spanning more decades than this get no minor grid lines (they
/// would crowd into a grey band).
const MAX_MINOR_DECADES: i32 = 6;

/// Okabe–Ito colours (distinguishable with the common colour-vision
/// deficiencies), with the yellow, which is unreadable on white, replaced by
/// grey. Series beyond the palette reuse it with a dash pattern.
const PALETTE: [&str; 8] = [
    "#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#000000", "#7F7F7F",
];

/// Dash patterns for the 2nd, 3rd, ... pass through [`PALETTE`], so that
/// series sharing a colour still look different.
const DASHES: [&str; 3] = ["6 3", "2 2", "8 3 2 3"];

/// One named curve of a [`Chart`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// Legend text (escaped on output, so any string is fine).
    pub name: String,
    /// `(x, y)` points, joined by a line in the given order.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series named `name` with `points`.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.into(),
            points,
        }
    }
}

/// A line chart: one polyline with point markers per series, a legend,
/// axes with ticks and grid lines, linear or logarithmic per axis.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Chart {
    /// Title drawn above the plot.
    pub title: String,
    /// Label under the x axis (put units here, e.g. "nodes").
    pub x_label: String,
    /// Label beside the y axis (put units here, e.g. "latency (ms)").
    pub y_label: String,
    /// Logarithmic x axis, ticks at powers of ten.
    pub log_x: bool,
    /// Logarithmic y axis, ticks at powers of ten.
    pub log_y: bool,
    /// The curves, drawn and listed in the legend in this order.
    pub series: Vec<Series>,
}

impl Chart {
    /// Renders the chart as a standalone SVG document (ends with a newline).
    ///
    /// A point is drawn only if both coordinates are finite, at most 1e300
    /// in magnitude, and positive on a logarithmic axis; other points are
    /// skipped. A series left with no point is still listed in the legend,
    /// marked "(no data)".
    pub fn to_svg(&self) -> String {
        let drawable: Vec<Vec<(f64, f64)>> = self
            .series
            .iter()
            .map(|s| {
                s.points
                    .iter()
                    .copied()
                    .filter(|&(x, y)| drawable(x, self.log_x) && drawable(y, self.log_y))
                    .collect()
            })
            .collect();
        let xs = drawable.iter().flatten().map(|p| p.0);
        let ys = drawable.iter().flatten().map(|p| p.1);
        let x_axis = Axis::new(min_max(xs), self.log_x);
        let y_axis = Axis::new(min_max(ys), self.log_y);
        let px = |x: f64| PLOT_LEFT + x_axis.frac(x) * (PLOT_RIGHT - PLOT_LEFT);
        let py = |y: f64| PLOT_BOTTOM - y_axis.frac(y) * (PLOT_BOTTOM - PLOT_TOP);

        let mut out = String::new();
        // `write!` into a String cannot fail; the results are ignored.
        let _ = writeln!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
             viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">",
            w = WIDTH,
            h = HEIGHT
        );
        out.push_str("<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"white\"/>\n");

        // Title and axis labels.
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"26\" text-anchor=\"middle\" font-size=\"16\" \
             font-weight=\"bold\">{}</text>",
            (PLOT_LEFT + PLOT_RIGHT) / 2.0,
            escape(&self.title)
        );
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            (PLOT_LEFT + PLOT_RIGHT) / 2.0,
            HEIGHT - 16.0,
            escape(&self.x_label)
        );
        let y_mid = (PLOT_TOP + PLOT_BOTTOM) / 2.0;
        let _ = writeln!(
            out,
            "<text x=\"18\" y=\"{y_mid:.1}\" text-anchor=\"middle\" \
             transform=\"rotate(-90 18 {y_mid:.1})\">{}</text>",
            escape(&self.y_label)
        );

        // Grid lines (minor ones first, so major ones stay on top) and
        // tick labels.
        let grid = |out: &mut String,
                    color: &str,
                    xs: &mut dyn Iterator<Item = f64>,
                    ys: &mut dyn Iterator<Item = f64>| {
            let _ = writeln!(out, "<g stroke=\"{color}\" stroke-width=\"1\">");
            for x in xs.map(&px) {
                let _ = writeln!(
                    out,
                    "<line x1=\"{x:.1}\" y1=\"{PLOT_TOP:.1}\" x2=\"{x:.1}\" y2=\"{PLOT_BOTTOM:.1}\"/>"
                );
            }
            for y in ys.map(&py) {
                let _ = writeln!(
                    out,
                    "<line x1=\"{PLOT_LEFT:.1}\" y1=\"{y:.1}\" x2=\"{PLOT_RIGHT:.1}\" y2=\"{y:.1}\"/>"
                );
            }
            out.push_str("</g>\n");
        };
        grid(
            &mut out,
            "#f2f2f2",
            &mut x_axis.minor.iter().copied(),
            &mut y_axis.minor.iter().copied(),
        );
        grid(
            &mut out,
            "#dddddd",
            &mut x_axis.ticks.iter().map(|t| t.0),
            &mut y_axis.ticks.iter().map(|t| t.0),
        );
        out.push_str("<g stroke=\"#333333\" stroke-width=\"1\">\n");
        for (v, _) in &x_axis.ticks {
            let x = px(*v);
            let _ = writeln!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{PLOT_BOTTOM:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>",
                PLOT_BOTTOM + 5.0
            );
        }
        for (v, _) in &y_axis.ticks {
            let y = py(*v);
            let _ = writeln!(
                out,
                "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{PLOT_LEFT:.1}\" y2=\"{y:.1}\"/>",
                PLOT_LEFT - 5.0
            );
        }
        out.push_str("</g>\n");
        out.push_str("<g font-size=\"11\" fill=\"#333333\">\n");
        for (v, label) in &x_axis.ticks {
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                px(*v),
                PLOT_BOTTOM + 18.0,
                escape(label)
            );
        }
        for (v, label) in &y_axis.ticks {
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                PLOT_LEFT - 8.0,
                py(*v) + 4.0,
                escape(label)
            );
        }
        out.push_str("</g>\n");
        // Plot frame (the axes), drawn after the grid so it stays on top.
        let _ = writeln!(
            out,
            "<rect x=\"{PLOT_LEFT:.1}\" y=\"{PLOT_TOP:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
             fill=\"none\" stroke=\"#333333\" stroke-width=\"1\"/>",
            PLOT_RIGHT - PLOT_LEFT,
            PLOT_BOTTOM - PLOT_TOP
        );

        // The curves.
        for (i, points) in drawable.iter().enumerate() {
            if points.is_empty() {
                continue;
            }
            let (color, dash) = style(i);
            let _ = write!(
                out,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash} points=\""
            );
            for (j, &(x, y)) in points.iter().enumerate() {
                let sep = if j == 0 { "" } else { " " };
                let _ = write!(out, "{sep}{:.1},{:.1}", px(x), py(y));
            }
            out.push_str("\"/>\n");
            let _ = writeln!(out, "<g fill=\"{color}\">");
            for &(x, y) in points {
                let _ = writeln!(
                    out,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\"/>",
                    px(x),
                    py(y)
                );
            }
            out.push_str("</g>\n");
        }

        self.legend(&mut out, &drawable);
        out.push_str("</svg>\n");
        out
    }

    /// Appends the legend box: one row per series (swatch and name), capped
    /// at [`LEGEND_MAX_ROWS`] rows.
    fn legend(&self, out: &mut String, drawable: &[Vec<(f64, f64)>]) {
        if self.series.is_empty() {
            return;
        }
        let shown = if self.series.len() > LEGEND_MAX_ROWS {
            LEGEND_MAX_ROWS - 1
        } else {
            self.series.len()
        };
        let rows = shown + usize::from(shown < self.series.len());
        let height = rows as f64 * LEGEND_ROW + 10.0;
        let _ = writeln!(
            out,
            "<rect x=\"{LEGEND_LEFT:.1}\" y=\"{PLOT_TOP:.1}\" width=\"{LEGEND_WIDTH:.1}\" \
             height=\"{height:.1}\" fill=\"white\" stroke=\"#999999\" stroke-width=\"1\"/>"
        );
        out.push_str("<g font-size=\"11\">\n");
        for (i, s) in self.series.iter().take(shown).enumerate() {
            let y = PLOT_TOP + 5.0 + LEGEND_ROW * (i as f64 + 0.5);
            let (color, dash) = style(i);
            let x0 = LEGEND_LEFT + 8.0;
            let x1 = LEGEND_LEFT + 30.0;
            let mut name = shorten(&s.name);
            let text_color = if drawable[i].is_empty() {
                name.push_str(" (no data)");
                "#777777"
            } else {
                let _ = writeln!(
                    out,
                    "<line x1=\"{x0:.1}\" y1=\"{y:.1}\" x2=\"{x1:.1}\" y2=\"{y:.1}\" \
                     stroke=\"{color}\" stroke-width=\"2\"{dash}/>"
                );
                let _ = writeln!(
                    out,
                    "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{color}\"/>",
                    (x0 + x1) / 2.0
                );
                "#222222"
            };
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{text_color}\">{}</text>",
                x1 + 6.0,
                y + 4.0,
                escape(&name)
            );
        }
        if shown < self.series.len() {
            let y = PLOT_TOP + 5.0 + LEGEND_ROW * (shown as f64 + 0.5);
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#777777\">+{} more</text>",
                LEGEND_LEFT + 36.0,
                y + 4.0,
                self.series.len() - shown
            );
        }
        out.push_str("</g>\n");
    }
}

/// Whether `v` can be placed on an axis (see [`Chart::to_svg`]).
fn drawable(v: f64, log: bool) -> bool {
    v.is_finite() && v.abs() <= MAX_MAGNITUDE && (!log || v > 0.0)
}

/// Colour and SVG dash attribute (empty or ` stroke-dasharray="..."`) of
/// the `i`-th series.
fn style(i: usize) -> (&'static str, String) {
    let color = PALETTE[i % PALETTE.len()];
    let pass = i / PALETTE.len();
    let dash = if pass == 0 {
        String::new()
    } else {
        format!(
            " stroke-dasharray=\"{}\"",
            DASHES[(pass - 1) % DASHES.len()]
        )
    };
    (color, dash)
}

/// `name` cut to [`LEGEND_MAX_CHARS`] characters (not bytes, so multi-byte
/// text is never split) with an ellipsis when cut.
fn shorten(name: &str) -> String {
    if name.chars().count() <= LEGEND_MAX_CHARS {
        return name.to_string();
    }
    let mut s: String = name.chars().take(LEGEND_MAX_CHARS - 1).collect();
    s.push('…');
    s
}

/// Smallest and largest value, or `None` for no values.
fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// Escapes text for SVG content and attribute values. Control characters
/// that XML 1.0 forbids outright (even as references) become U+FFFD, so a
/// stray byte in a program name cannot make the whole file unreadable.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// One axis: its value range and its ticks, already chosen so that the
/// range ends on ticks.
struct Axis {
    /// Range start (for log axes, its base-10 logarithm).
    lo: f64,
    /// Range end (for log axes, its base-10 logarithm); always > `lo`.
    hi: f64,
    log: bool,
    /// Tick values (in data units) with their labels, ascending.
    ticks: Vec<(f64, String)>,
    /// Unlabelled minor grid values: 2..9 times each decade on a log axis
    /// of few decades (reading values off a log scale needs them), else none.
    minor: Vec<f64>,
}

impl Axis {
    /// The axis for data spanning `range` (`None`: no data).
    fn new(range: Option<(f64, f64)>, log: bool) -> Axis {
        if log {
            Axis::log(range)
        } else {
            Axis::linear(range)
        }
    }

    /// Linear axis with about [`LINEAR_TICKS`] "nice" ticks (steps of 1, 2,
    /// 2.5 or 5 times a power of ten).
    fn linear(range: Option<(f64, f64)>) -> Axis {
        let (mut lo, mut hi) = range.unwrap_or((0.0, 1.0));
        // A range too small to tell apart from its midpoint in labels (or
        // zero) gets padded so the ticks are distinct.
        let scale = lo.abs().max(hi.abs());
        if hi - lo <= scale * 1e-9 {
            let pad = if scale == 0.0 { 1.0 } else { scale * 0.1 };
            lo -= pad;
            hi += pad;
        }
        let step = nice_step((hi - lo) / LINEAR_TICKS);
        // The epsilon stops rounding noise (0.6 / 0.2 = 2.9999...) from
        // adding a tick beyond the data.
        let first = (lo / step + 1e-9).floor();
        let last = (hi / step - 1e-9).ceil();
        let n = (last - first) as i64;
        let decimals = decimals_for(step);
        let ticks = (0..=n)
            .map(|i| {
                let mut v = (first + i as f64) * step;
                if v.abs() < step * 1e-9 {
                    v = 0.0; // no "-0"
                }
                (v, format!("{v:.decimals$}"))
            })
            .collect();
        Axis {
            lo: first * step,
            hi: last * step,
            log: false,
            ticks,
            minor: Vec::new(),
        }
    }

    /// Logarithmic axis spanning whole decades, a tick at each (or every
    /// n-th when there are more than [`MAX_LOG_TICKS`]).
    fn log(range: Option<(f64, f64)>) -> Axis {
        let (lo, hi) = range.unwrap_or((1.0, 10.0));
        // The epsilon keeps exact powers of ten (whose log10 may be off by
        // an ulp) on their own decade instead of widening the range.
        let mut lo_e = (lo.log10() + 1e-9).floor() as i32;
        let mut hi_e = (hi.log10() - 1e-9).ceil() as i32;
        // Stay inside what an f64 can represent as 10^e.
        lo_e = lo_e.clamp(-307, 300);
        hi_e = hi_e.clamp(-307, 300);
        if hi_e <= lo_e {
            hi_e = lo_e + 1;
        }
        let stride = (hi_e - lo_e + MAX_LOG_TICKS - 1) / MAX_LOG_TICKS;
        let ticks = (lo_e..=hi_e)
            .filter(|e| (e - lo_e) % stride == 0)
            .map(|e| (pow10(e), decade_label(e)))
            .collect();
        let minor = if hi_e - lo_e <= MAX_MINOR_DECADES {
            (lo_e..hi_e)
                .flat_map(|e| (2..=9).map(move |k| f64::from(k) * pow10(e)))
                .collect()
        } else {
            Vec::new()
        };
        Axis {
            lo: f64::from(lo_e),
            hi: f64::from(hi_e),
            log: true,
            ticks,
            minor,
        }
    }

    /// Position of `v` along the axis, 0 at the start and 1 at the end.
    fn frac(&self, v: f64) -> f64 {
        let t = if self.log { v.log10() } else { v };
        (t - self.lo) / (self.hi - self.lo)
    }
}

/// 10^e, exact for every representable decade (parsing is correctly
/// rounded, whereas `powi` may be off by an ulp).
fn pow10(e: i32) -> f64 {
    format!("1e{e}").parse().unwrap_or(1.0)
}

/// Label of the decade 10^e: `0.001` .. `100`, then `1k`, `10k`, `1M`, ...
/// `100T`, and `1e15`-style beyond.
fn decade_label(e: i32) -> String {
    const SUFFIXES: [&str; 5] = ["", "k", "M", "G", "T"];
    match e {
        -3..=-1 => format!("0.{}1", "0".repeat((-e - 1) as usize)),
        0..=14 => {
            let zeros = (e % 3) as usize;
            format!("1{}{}", "0".repeat(zeros), SUFFIXES[(e / 3) as usize])
        }
        _ => format!("1e{e}"),
    }
}

/// The smallest of 1, 2, 2.5, 5 or 10 times a power of ten that is at least
/// `rough` (positive and finite).
fn nice_step(rough: f64) -> f64 {
    let mag = pow10(rough.log10().floor() as i32);
    let norm = rough / mag;
    let factor = [1.0, 2.0, 2.5, 5.0]
        .into_iter()
        .find(|&f| norm <= f * (1.0 + 1e-9))
        .unwrap_or(10.0);
    factor * mag
}

/// Decimal places needed to print multiples of `step` exactly (up to 15).
fn decimals_for(step: f64) -> usize {
    (0..15)
        .find(|&d| {
            let scaled = step * pow10(d as i32);
            (scaled - scaled.round()).abs() <= scaled * 1e-6
        })
        .unwrap_or(15)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that every element opened is closed in order, that nothing
    /// follows the root element, and that every `&` starts an entity.
    fn check_well_formed(svg: &str) {
        assert!(
            svg.starts_with("<svg"),
            "start: {}",
            &svg[..svg.len().min(40)]
        );
        assert!(svg.ends_with("</svg>\n"));
        for (i, _) in svg.match_indices('&') {
            let entity = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"];
            assert!(
                entity.iter().any(|e| svg[i..].starts_with(e)),
                "raw '&' at {i}"
            );
        }
        let mut stack: Vec<&str> = Vec::new();
        let mut rest = svg;
        while let Some(open) = rest.find('<') {
            let close = rest[open..].find('>').expect("unclosed tag") + open;
            let tag = &rest[open + 1..close];
            assert!(!tag.contains('<'), "'<' inside tag: {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name), "mismatched </{name}>");
            } else {
                let name = tag.split_whitespace().next().expect("empty tag");
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
            rest = &rest[close + 1..];
            if stack.is_empty() {
                assert_eq!(rest, "\n", "content after the root element");
            }
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
    }

    fn assert_no_bad_numbers(svg: &str) {
        let lower = svg.to_lowercase();
        assert!(!lower.contains("nan"), "NaN in output");
        assert!(!lower.contains("inf"), "inf in output");
    }

    fn sample() -> Chart {
        Chart {
            title: "Recompile latency".into(),
            x_label: "graph nodes".into(),
            y_label: "latency (ms)".into(),
            log_x: true,
            log_y: true,
            series: vec![
                Series::new(
                    "full",
                    vec![(1e3, 0.8), (1e4, 7.5), (1e5, 81.0), (1e6, 900.0)],
                ),
                Series::new(
                    "incremental",
                    vec![(1e3, 0.2), (1e4, 0.3), (1e5, 0.45), (1e6, 0.7)],
                ),
                Series::new("empty", vec![(f64::NAN, 1.0), (0.0, 1.0), (10.0, -1.0)]),
            ],
        }
    }

    #[test]
    fn output_is_well_formed_with_one_polyline_per_drawable_series() {
        let svg = sample().to_svg();
        check_well_formed(&svg);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("(no data)").count(), 1);
        assert!(svg.contains(">empty (no data)</text>"));
        // Four markers per drawn series, plus one per drawn legend row.
        assert_eq!(svg.matches("<circle").count(), 4 + 4 + 2);
        assert_no_bad_numbers(&svg);
    }

    #[test]
    fn log_ticks_for_three_decades_are_exactly_the_four_decades() {
        let axis = Axis::new(min_max([1e3, 2e4, 1e6].into_iter()), true);
        let values: Vec<f64> = axis.ticks.iter().map(|t| t.0).collect();
        assert_eq!(values, vec![1e3, 1e4, 1e5, 1e6]);
        let labels: Vec<&str> = axis.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, vec!["1k", "10k", "100k", "1M"]);
        assert_eq!(axis.minor.len(), 3 * 8);
        assert_eq!(axis.minor[..2], [2e3, 3e3]);
        assert_eq!(axis.frac(1e3), 0.0);
        assert_eq!(axis.frac(1e6), 1.0);
    }

    #[test]
    fn log_ticks_round_out_to_decades_and_label_small_values() {
        let axis = Axis::new(Some((0.15, 42.0)), true);
        let labels: Vec<&str> = axis.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, vec!["0.1", "1", "10", "100"]);
        assert_eq!(decade_label(-3), "0.001");
        assert_eq!(decade_label(8), "100M");
        assert_eq!(decade_label(15), "1e15");
        assert_eq!(decade_label(-4), "1e-4");
    }

    #[test]
    fn wide_log_ranges_thin_out_their_ticks() {
        let axis = Axis::new(Some((1e-100, 1e100)), true);
        assert!(axis.ticks.len() <= MAX_LOG_TICKS as usize + 1);
        assert!(axis.minor.is_empty());
        assert_eq!(axis.ticks.first().map(|t| t.0), Some(1e-100));
        assert_eq!(axis.ticks.last().map(|t| t.0), Some(1e100));
    }

    #[test]
    fn linear_ticks_are_nice_and_cover_the_data() {
        let axis = Axis::new(Some((3.0, 97.0)), false);
        let values: Vec<f64> = axis.ticks.iter().map(|t| t.0).collect();
        assert_eq!(values, vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let labels: Vec<&str> = axis.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, vec!["0", "20", "40", "60", "80", "100"]);

        let axis = Axis::new(Some((-0.6, 0.4)), false);
        let labels: Vec<&str> = axis.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, vec!["-0.6", "-0.4", "-0.2", "0.0", "0.2", "0.4"]);

        let axis = Axis::new(Some((0.0, 1.2)), false);
        let labels: Vec<&str> = axis.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, vec!["0.00", "0.25", "0.50", "0.75", "1.00", "1.25"]);
    }

    #[test]
    fn escaping_covers_markup_and_control_characters() {
        assert_eq!(
            escape("a<b & \"c\" 'd'>"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"
        );
        assert_eq!(escape("x\u{1}y\nz"), "x\u{FFFD}y z");
        let chart = Chart {
            title: "<script>&".into(),
            series: vec![Series::new("a</text>b", vec![(1.0, 1.0)])],
            ..Chart::default()
        };
        let svg = chart.to_svg();
        check_well_formed(&svg);
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;&amp;"));
        assert!(svg.contains("a&lt;/text&gt;b"));
    }

    #[test]
    fn degenerate_charts_render_without_bad_numbers() {
        let charts = [
            Chart::default(),
            Chart {
                log_x: true,
                log_y: true,
                ..Chart::default()
            },
            Chart {
                series: vec![Series::new("flat", vec![(5.0, 2.0), (5.0, 2.0)])],
                ..Chart::default()
            },
            Chart {
                series: vec![Series::new("zero", vec![(0.0, 0.0)])],
                ..Chart::default()
            },
            Chart {
                log_x: true,
                log_y: true,
                series: vec![
                    Series::new("one", vec![(100.0, 3.0)]),
                    Series::new("bad", vec![(f64::INFINITY, 1.0), (-1.0, 1.0)]),
                ],
                ..Chart::default()
            },
            Chart {
                series: vec![Series::new(
                    "huge",
                    vec![(-1e300, 1e300), (1e300, -1e300), (f64::MAX, 0.0)],
                )],
                ..Chart::default()
            },
            Chart {
                log_y: true,
                series: vec![Series::new("tiny", vec![(1.0, 1e-300), (2.0, 1e300)])],
                ..Chart::default()
            },
            Chart {
                series: vec![Series::new("close", vec![(1.0, 1.0), (2.0, 1.0 + 1e-15)])],
                ..Chart::default()
            },
        ];
        for chart in &charts {
            let svg = chart.to_svg();
            check_well_formed(&svg);
            assert_no_bad_numbers(&svg);
        }
        // An empty chart has axes but no curves and no legend.
        let svg = Chart::default().to_svg();
        assert_eq!(svg.matches("<polyline").count(), 0);
        assert!(svg.contains(">0.0</text>") && svg.contains(">1.0</text>"));
    }

    #[test]
    fn many_series_cycle_styles_and_cap_the_legend() {
        let series = (0..30)
            .map(|i| {
                Series::new(
                    format!("s{i}"),
                    vec![(1.0, i as f64), (2.0, i as f64 + 1.0)],
                )
            })
            .collect();
        let chart = Chart {
            series,
            ..Chart::default()
        };
        let svg = chart.to_svg();
        check_well_formed(&svg);
        assert_eq!(svg.matches("<polyline").count(), 30);
        assert!(svg.contains("+14 more"));
        assert_eq!(style(0).1, "");
        assert_ne!(style(8).1, "");
        assert_eq!(style(8).0, style(0).0);
        assert_eq!(
            shorten("a-very-long-series-name-indeed").chars().count(),
            19
        );
    }

    #[test]
    fn output_is_deterministic() {
        assert_eq!(sample().to_svg(), sample().to_svg());
    }
}
