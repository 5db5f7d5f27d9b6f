//! The scaling chart (SVG and PNG, pure Rust): throughput and p99 latency against cores, with
//! corekv's ideal linear line and the peers' points.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;

use crate::Error;

/// One measured configuration.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    pub server: String,
    pub cores: usize,
    pub ops_per_sec: f64,
    pub p99_us: f64,
    pub server_cpu_us_per_request: Option<f64>,
    pub client_cpu_utilization: Option<f64>,
    pub errors: u64,
    pub shared_cpus: bool,
}

/// Where Debian's fonts-dejavu-core puts the font the PNG is drawn with.
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Registers DejaVu Sans as "sans-serif" for the bitmap backend, once.
fn register_font() -> Result<(), Error> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let path = FONT_PATHS
            .iter()
            .find(|p| Path::new(p).is_file())
            .ok_or_else(|| {
                format!("no font found at {FONT_PATHS:?} (apt-get install fonts-dejavu-core)")
            })?;
        let bytes = std::fs::read(path).map_err(|e| format!("read {path}: {e}"))?;
        // The font registry keeps 'static references; the font lives for the whole process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| format!("{path} is not a usable font"))
    })
    .clone()
    .map_err(Error::Chart)
}

pub fn render(points: &[Point], title: &str, svg: &Path, png: &Path) -> Result<(), Error> {
    register_font()?;
    if let Some(dir) = svg.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io(format!("create {}", dir.display())))?;
    }
    let size = (1100, 480);
    draw(
        SVGBackend::new(svg, size).into_drawing_area(),
        points,
        title,
    )?;
    draw(
        BitMapBackend::new(png, size).into_drawing_area(),
        points,
        title,
    )?;
    eprintln!(
        "corekv-bench: wrote {} and {}",
        svg.display(),
        png.display()
    );
    Ok(())
}

fn color(server: &str) -> RGBColor {
    match server {
        "corekv" => RGBColor(0x1f, 0x77, 0xb4),
        "redis" => RGBColor(0xd6, 0x27, 0x28),
        _ => RGBColor(0xff, 0x7f, 0x0e),
    }
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    points: &[Point],
    title: &str,
) -> Result<(), Error> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| Error::Chart(e.to_string());
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(err)?;
    let (left, right) = root.split_horizontally(550);
    let max_cores = points.iter().map(|p| p.cores).max().unwrap_or(1);
    let base = points
        .iter()
        .find(|p| p.server == "corekv" && p.cores == 1)
        .map_or(0.0, |p| p.ops_per_sec);
    let mut servers: Vec<&str> = points.iter().map(|p| p.server.as_str()).collect();
    servers.dedup();
    servers.sort_unstable();
    servers.dedup();

    let top_ops = points
        .iter()
        .map(|p| p.ops_per_sec)
        .fold(base * max_cores as f64, f64::max)
        .max(1.0)
        * 1.1;
    let mut c = ChartBuilder::on(&left)
        .caption("throughput", ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0.5f64..max_cores as f64 + 0.5, 0f64..top_ops)
        .map_err(err)?;
    c.configure_mesh()
        .x_desc("cores")
        .y_desc("ops/s")
        .x_labels(max_cores + 1)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{:.0}k", y / 1000.0))
        .draw()
        .map_err(err)?;
    if base > 0.0 {
        c.draw_series(LineSeries::new(
            (1..=max_cores).map(|n| (n as f64, base * n as f64)),
            ShapeStyle::from(&BLACK.mix(0.4)).stroke_width(1),
        ))
        .map_err(err)?
        .label("ideal (linear)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.4)));
    }
    for s in &servers {
        let col = color(s);
        let pts: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.server == *s)
            .map(|p| (p.cores as f64, p.ops_per_sec))
            .collect();
        c.draw_series(LineSeries::new(pts.clone(), col.stroke_width(2)))
            .map_err(err)?
            .label(*s)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], col.stroke_width(2)));
        c.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, col.filled())))
            .map_err(err)?;
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(err)?;

    let top_p99 = points.iter().map(|p| p.p99_us).fold(1.0, f64::max) * 1.1;
    let mut c = ChartBuilder::on(&right)
        .caption("p99 latency", ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0.5f64..max_cores as f64 + 0.5, 0f64..top_p99)
        .map_err(err)?;
    c.configure_mesh()
        .x_desc("cores")
        .y_desc("p99 (us)")
        .x_labels(max_cores + 1)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(err)?;
    for s in &servers {
        let col = color(s);
        let pts: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.server == *s)
            .map(|p| (p.cores as f64, p.p99_us))
            .collect();
        c.draw_series(LineSeries::new(pts.clone(), col.stroke_width(2)))
            .map_err(err)?;
        c.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, col.filled())))
            .map_err(err)?;
    }
    root.present().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_svg_and_png() {
        if FONT_PATHS.iter().all(|p| !Path::new(p).is_file()) {
            eprintln!("skipped: no DejaVu font installed");
            return;
        }
        let dir = std::env::temp_dir().join(format!("corekv-bench-chart-{}", std::process::id()));
        let point = |server: &str, cores, ops| Point {
            server: server.into(),
            cores,
            ops_per_sec: ops,
            p99_us: 100.0,
            server_cpu_us_per_request: None,
            client_cpu_utilization: None,
            errors: 0,
            shared_cpus: false,
        };
        let pts = [
            point("corekv", 1, 100e3),
            point("corekv", 2, 190e3),
            point("redis", 1, 90e3),
        ];
        render(&pts, "test", &dir.join("s.svg"), &dir.join("s.png")).unwrap();
        let svg = std::fs::read_to_string(dir.join("s.svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("corekv"));
        let png = std::fs::read(dir.join("s.png")).unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
