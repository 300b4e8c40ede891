//! The report in mtr's layouts: `--report` (`-w` wide) and `--csv`.
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use netloom::probe::trace::HopReport;

/// Width mtr gives the host column of a report that is not wide.
const HOST_COLUMN: usize = 33;

/// The local host's name, as mtr's report header shows it (`gethostname`).
pub fn local_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// `2026-12-05T10:13:59+0000`, mtr's `Start:` time (in UTC).
pub fn iso_time(at: SystemTime) -> String {
    let secs = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+0000",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// How a responder is shown: its address, or its name (and AS) when looked up.
pub type Label<'a> = &'a dyn Fn(IpAddr) -> String;

fn host(row: &HopReport, label: Label<'_>) -> String {
    row.hosts
        .first()
        .map_or_else(|| "???".to_owned(), |ip| label(*ip))
}

/// Pads `s` with spaces to `width` characters; cuts it there if `cut`.
fn pad(s: &str, width: usize, cut: bool) -> String {
    let mut out: String = if cut {
        s.chars().take(width).collect()
    } else {
        s.to_owned()
    };
    while out.chars().count() < width {
        out.push(' ');
    }
    out
}

/// mtr's `--report` table: `HOST: <local host>` and the default columns
/// (`Loss% Snt Last Avg Best Wrst StDev`); other responders of a hop on lines of their own.
/// Not wide, the host column is cut at 33 characters (line prefix included); wide, it is
/// as wide as the longest name. A value wider than its column pushes into the next one's
/// leading space, as in mtr (`100.0` loss loses its `%`). With path MTUs measured
/// (`--pmtu`), a last column `PMTU` (`-` for a hop without one).
pub fn table(local: &str, rows: &[HopReport], wide: bool, label: Label<'_>) -> String {
    let names = rows
        .iter()
        .map(|r| host(r, label).len())
        .chain(std::iter::once(local.len()))
        .max()
        .unwrap_or(0);
    let header = |text: &str, prefix: String| -> String {
        if wide {
            prefix + &pad(text, names, false)
        } else {
            pad(&(prefix + text), HOST_COLUMN, true)
        }
    };
    let pmtu = rows.iter().any(|r| r.pmtu.is_some());
    let mut out = header(local, "HOST: ".to_owned());
    out += " Loss%   Snt   Last   Avg  Best  Wrst StDev";
    out += if pmtu { "  PMTU\n" } else { "\n" };
    for r in rows {
        out += &header(&host(r, label), format!(" {:>2}.|-- ", r.hop));
        let loss: String = format!(" {:>4.1}%", r.loss_percent)
            .chars()
            .take(6)
            .collect();
        let _ = write!(
            out,
            "{loss} {:>5}  {:>5.1} {:>5.1} {:>5.1} {:>5.1} {:>5.1}",
            r.sent, r.last_ms, r.avg_ms, r.best_ms, r.worst_ms, r.stdev_ms
        );
        if pmtu {
            let _ = write!(out, " {:>5}", pmtu_text(r));
        }
        out.push('\n');
        for other in r.hosts.iter().skip(1) {
            let _ = writeln!(out, "        {}", label(*other));
        }
        for l in &r.mpls {
            let _ = writeln!(out, "       [MPLS: {l}]");
        }
    }
    out
}

/// The flows map under a `--flows` report: per hop, each responder and its flows.
pub fn flows(f: &netloom::probe::trace::FlowTrace, rows: &[HopReport]) -> String {
    let mut out = format!(
        "Flows: {} (UDP source ports {}..={})\n",
        f.traces.len(),
        f.first_port,
        usize::from(f.first_port) + f.traces.len().saturating_sub(1)
    );
    for r in rows {
        for (address, flows) in f.responders(r.hop) {
            let list: Vec<String> = flows.iter().map(ToString::to_string).collect();
            let _ = writeln!(out, " {:>2}. {address:<39} flows {}", r.hop, list.join(","));
        }
    }
    out
}

/// A hop's path MTU, `-` when not measured.
pub fn pmtu_text(r: &HopReport) -> String {
    r.pmtu.map_or_else(|| "-".to_owned(), |m| m.to_string())
}

/// mtr's `--csv`: one line per hop after a header; with path MTUs measured (`--pmtu`),
/// a last column `PMTU`.
pub fn csv(target: &str, start: SystemTime, rows: &[HopReport], label: Label<'_>) -> String {
    let secs = start.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let pmtu = rows.iter().any(|r| r.pmtu.is_some());
    let mut out = "Mtr_Version,Start_Time,Status,Host,Hop,Ip,Loss%,Snt, ,Last,Avg,Best,Wrst,StDev,"
        .to_owned();
    out += if pmtu { "PMTU,\n" } else { "\n" };
    for r in rows {
        let _ = write!(
            out,
            "NETLOOM.{},{secs},OK,{target},{},{},{:.2},{},{},{:.2},{:.2},{:.2},{:.2},{:.2}",
            env!("CARGO_PKG_VERSION"),
            r.hop,
            host(r, label),
            r.loss_percent,
            r.sent,
            r.sent - r.received,
            r.last_ms,
            r.avg_ms,
            r.best_ms,
            r.worst_ms,
            r.stdev_ms
        );
        if pmtu {
            let _ = write!(out, ",{}", pmtu_text(r));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(ip: IpAddr) -> String {
        ip.to_string()
    }

    fn row(hop: u8, host: Option<&str>, loss: f64) -> HopReport {
        HopReport {
            hop,
            hosts: host.map(|h| h.parse().expect("addr")).into_iter().collect(),
            loss_percent: loss,
            sent: 3,
            received: if loss == 0.0 { 3 } else { 0 },
            last_ms: 0.04,
            avg_ms: 0.1,
            best_ms: 0.04,
            worst_ms: 0.15,
            stdev_ms: 0.06,
            mpls: vec![],
            outcome: None,
            pmtu: None,
            pmtu_black_hole: false,
        }
    }

    /// The lines Debian's mtr 0.95 printed for this trace (`mtr -r -c 3`, hostname `vm`).
    #[test]
    fn table_matches_mtr_report_layout() {
        let rows = [
            row(1, Some("198.18.0.2"), 0.0),
            row(2, Some("198.18.1.2"), 0.0),
            row(3, None, 100.0),
        ];
        let got = table("vm", &rows, false, &plain);
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(
            lines[0],
            "HOST: vm                          Loss%   Snt   Last   Avg  Best  Wrst StDev"
        );
        assert_eq!(
            lines[1],
            "  1.|-- 198.18.0.2                 0.0%     3    0.0   0.1   0.0   0.1   0.1"
        );
        assert_eq!(
            lines[3],
            "  3.|-- ???                       100.0     3    0.0   0.1   0.0   0.1   0.1"
        );
    }

    #[test]
    fn wide_never_truncates() {
        let rows = [row(1, Some("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff"), 0.0)];
        assert!(
            table("vm", &rows, true, &plain).contains("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff ")
        );
        assert!(
            !table("vm", &rows, false, &plain).contains("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff")
        );
    }

    #[test]
    fn csv_has_mtrs_columns() {
        let out = csv(
            "example",
            UNIX_EPOCH,
            &[row(1, Some("10.0.0.1"), 0.0)],
            &plain,
        );
        let mut lines = out.lines();
        assert_eq!(
            lines.next(),
            Some("Mtr_Version,Start_Time,Status,Host,Hop,Ip,Loss%,Snt, ,Last,Avg,Best,Wrst,StDev,")
        );
        let fields: Vec<&str> = lines.next().expect("row").split(',').collect();
        assert_eq!(
            &fields[1..8],
            ["0", "OK", "example", "1", "10.0.0.1", "0.00", "3"]
        );
    }

    #[test]
    fn pmtu_column_only_when_measured() {
        let mut rows = [row(1, Some("10.0.0.1"), 0.0), row(2, None, 100.0)];
        assert!(!table("vm", &rows, false, &plain).contains("PMTU"));
        rows[0].pmtu = Some(1500);
        let t = table("vm", &rows, false, &plain);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].ends_with("StDev  PMTU"), "{t}");
        assert!(lines[1].ends_with("  1500"), "{t}");
        assert!(lines[2].ends_with("     -"), "{t}");
        let c = csv("x", UNIX_EPOCH, &rows, &plain);
        let lines: Vec<&str> = c.lines().collect();
        assert!(lines[0].ends_with("StDev,PMTU,"), "{c}");
        assert!(lines[1].ends_with(",1500"), "{c}");
    }

    #[test]
    fn iso_time_is_utc() {
        assert_eq!(iso_time(UNIX_EPOCH), "1970-01-01T00:00:00+0000");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_796_465_639);
        assert_eq!(iso_time(t), "2026-12-05T10:13:59+0000");
    }
}
