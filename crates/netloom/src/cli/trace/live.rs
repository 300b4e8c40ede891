//! The live view of `netloom trace` on a terminal (ratatui + crossterm).
//!
//! The trace runs on the runtime's worker threads and publishes a copy of its state after
//! every probe; this view only reads the latest copy, so drawing never holds a probe
//! back. Keys: `p` pause (the screen freezes, probes go on), `r` reset statistics,
//! `d` switch table / RTT history / responders, `q` or Esc quit.
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use netloom::probe::trace::{FlowTrace, Trace};
use ratatui::Frame;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Sparkline, Table};

/// Round-trip times kept per hop for the history view.
const HISTORY: usize = 200;

/// Which screen is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// One row per hop with its statistics.
    Table,
    /// Per hop, a sparkline of the latest round-trip times.
    History,
    /// Per hop, every responder seen (with `--flows`: and on which flows — the flows map).
    Responders,
}

/// What the trace publishes for the view: the statistics (every flow merged) and, with
/// `--flows`, every flow's own trace (for the flows map).
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Every flow's statistics together.
    pub trace: Trace,
    /// Each flow's trace, with `--flows`.
    pub flows: Option<FlowTrace>,
}

/// How a responder is shown (its name and AS when looked up).
pub type Label = Box<dyn Fn(IpAddr) -> String>;

/// What the screen shows: the latest trace copy and the per-hop RTT history.
pub struct LiveState {
    /// Names responders (None: addresses).
    pub label: Option<Label>,
    /// The name the user typed.
    pub host: String,
    /// The latest trace copy (frozen while paused).
    pub trace: Trace,
    /// The latest flows, with `--flows` (frozen while paused).
    pub flows: Option<FlowTrace>,
    /// The screen.
    pub view: View,
    /// Whether the screen is frozen.
    pub paused: bool,
    /// Per hop: round-trip times in microseconds, 0 for a lost probe, newest last.
    history: Vec<VecDeque<u64>>,
    /// Per hop: probes sent when the history last looked.
    seen: Vec<u32>,
}

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Keep going.
    None,
    /// Reset the statistics.
    Reset,
    /// Leave the view.
    Quit,
}

impl LiveState {
    /// A view of `trace` towards `host`.
    pub fn new(host: String, trace: Trace) -> Self {
        LiveState {
            label: None,
            host,
            trace,
            flows: None,
            view: View::Table,
            paused: false,
            history: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// Takes a newer copy of the trace (ignored while paused), extending the history
    /// with every probe it counts that the last copy did not.
    pub fn update(&mut self, trace: &Trace) {
        if self.paused {
            return;
        }
        let mut ttl = 1u8;
        while let Some(hop) = trace.hop(ttl) {
            let i = usize::from(ttl - 1);
            if self.history.len() <= i {
                self.history.resize_with(i + 1, VecDeque::new);
                self.seen.resize(i + 1, 0);
            }
            if hop.sent < self.seen[i] {
                // The trace was reset.
                self.history[i].clear();
                self.seen[i] = 0;
            }
            if hop.sent > self.seen[i] {
                let new = hop.sent - self.seen[i];
                // Answers among the new probes (the copy before a reset counts none);
                // they are drawn at the latest round-trip time, the rest as losses.
                let old = match self.trace.hop(ttl) {
                    Some(h) if h.sent <= hop.sent => h.received,
                    _ => 0,
                };
                let answered = hop.received.saturating_sub(old).min(new);
                for k in 0..new {
                    let rtt = if k >= new - answered {
                        hop.last.map_or(0, |d| d.as_micros() as u64)
                    } else {
                        0
                    };
                    let h = &mut self.history[i];
                    if h.len() == HISTORY {
                        h.pop_front();
                    }
                    h.push_back(rtt);
                }
                self.seen[i] = hop.sent;
            }
            ttl = match ttl.checked_add(1) {
                Some(t) => t,
                None => break,
            };
        }
        self.trace = trace.clone();
    }

    /// Takes a newer copy of the trace and flows (ignored while paused).
    pub fn update_snapshot(&mut self, snapshot: &Snapshot) {
        if self.paused {
            return;
        }
        self.update(&snapshot.trace);
        self.flows.clone_from(&snapshot.flows);
    }

    /// Applies a key.
    pub fn key(&mut self, key: KeyCode) -> Action {
        match key {
            KeyCode::Char('q') | KeyCode::Esc => Action::Quit,
            KeyCode::Char('p') | KeyCode::Char(' ') => {
                self.paused = !self.paused;
                Action::None
            }
            KeyCode::Char('r') => {
                for h in &mut self.history {
                    h.clear();
                }
                self.seen.iter_mut().for_each(|s| *s = 0);
                Action::Reset
            }
            KeyCode::Char('d') => {
                self.view = match self.view {
                    View::Table => View::History,
                    View::History => View::Responders,
                    View::Responders => View::Table,
                };
                Action::None
            }
            _ => Action::None,
        }
    }

    /// Draws the current view into `frame` (any size; rows that do not fit are cut).
    pub fn draw(&self, frame: &mut Frame<'_>) {
        let [title, body, help] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(1),
        ])
        .areas(frame.area());
        let state = if self.paused { " [paused]" } else { "" };
        frame.render_widget(
            Paragraph::new(format!(
                "netloom trace {} ({}){state}",
                self.host,
                self.trace.target()
            ))
            .style(Style::new().add_modifier(Modifier::BOLD)),
            title,
        );
        frame.render_widget(
            Paragraph::new("keys: p pause  r reset  d table/history/responders  q quit"),
            help,
        );
        let rows = self.trace.report();
        match self.view {
            View::Table => {
                let pmtu = rows.iter().any(|r| r.pmtu.is_some());
                let mut titles = vec![
                    "Hop", "Host", "Loss%", "Snt", "Last", "Avg", "Best", "Wrst", "StDev", "Jttr",
                ];
                if pmtu {
                    titles.push("PMTU");
                }
                let header = Row::new(titles).style(Style::new().add_modifier(Modifier::BOLD));
                let ms = |v: f64| format!("{v:.1}");
                let lines = rows.iter().map(|r| {
                    let jitter = self
                        .trace
                        .hop(r.hop)
                        .and_then(|h| h.jitter)
                        .map_or(0.0, |d| d.as_secs_f64() * 1e3);
                    let mut cells = vec![
                        format!("{}.", r.hop),
                        self.host_list(&r.hosts),
                        format!("{:.1}%", r.loss_percent),
                        r.sent.to_string(),
                        ms(r.last_ms),
                        ms(r.avg_ms),
                        ms(r.best_ms),
                        ms(r.worst_ms),
                        ms(r.stdev_ms),
                        ms(jitter),
                    ];
                    if pmtu {
                        cells.push(r.pmtu.map_or_else(|| "-".to_owned(), |m| m.to_string()));
                    }
                    Row::new(cells)
                });
                let mut widths = vec![
                    Constraint::Length(4),
                    Constraint::Min(16),
                    Constraint::Length(6),
                    Constraint::Length(5),
                    Constraint::Length(6),
                    Constraint::Length(6),
                    Constraint::Length(6),
                    Constraint::Length(6),
                    Constraint::Length(6),
                    Constraint::Length(5),
                ];
                if pmtu {
                    widths.push(Constraint::Length(5));
                }
                frame.render_widget(
                    Table::new(lines, widths)
                        .header(header)
                        .block(Block::bordered().title("hops")),
                    body,
                );
            }
            View::History => {
                let block = Block::bordered().title("round-trip time history (per hop)");
                let inner = block.inner(body);
                frame.render_widget(block, body);
                let areas =
                    Layout::vertical(rows.iter().map(|_| Constraint::Length(1))).split(inner);
                for (r, area) in rows.iter().zip(areas.iter()) {
                    let [label, spark] =
                        Layout::horizontal([Constraint::Length(22), Constraint::Min(0)])
                            .areas(*area);
                    let name = self.host_list(r.hosts.get(..1).unwrap_or_default());
                    frame.render_widget(Paragraph::new(format!("{:>2}. {name}", r.hop)), label);
                    let data: Vec<u64> = self
                        .history
                        .get(usize::from(r.hop) - 1)
                        .map(|h| {
                            let skip = h.len().saturating_sub(usize::from(spark.width));
                            h.iter().skip(skip).copied().collect()
                        })
                        .unwrap_or_default();
                    frame.render_widget(Sparkline::default().data(&data), spark);
                }
            }
            View::Responders => {
                let lines: Vec<Line<'_>> = rows
                    .iter()
                    .map(|r| {
                        let who = match &self.flows {
                            Some(f) => self.flow_list(f, r.hop),
                            None => self.host_list(&r.hosts),
                        };
                        Line::from(format!("{:>2}. {who}", r.hop))
                    })
                    .collect();
                let title = if self.flows.is_some() {
                    "responders per hop, and their flows"
                } else {
                    "responders per hop"
                };
                frame.render_widget(
                    Paragraph::new(lines).block(Block::bordered().title(title)),
                    body,
                );
            }
        }
    }
}

impl LiveState {
    /// `addr [flows 0,3]  addr [flows 1,2]`, or `???`.
    fn flow_list(&self, f: &FlowTrace, hop: u8) -> String {
        let all = f.responders(hop);
        if all.is_empty() {
            return "???".to_owned();
        }
        all.iter()
            .map(|(ip, flows)| {
                let list: Vec<String> = flows.iter().map(ToString::to_string).collect();
                format!("{} [flows {}]", self.host_list(&[*ip]), list.join(","))
            })
            .collect::<Vec<_>>()
            .join("  ")
    }

    fn host_list(&self, hosts: &[IpAddr]) -> String {
        if hosts.is_empty() {
            return "???".to_owned();
        }
        hosts
            .iter()
            .map(|ip| match &self.label {
                Some(label) => label(*ip),
                None => ip.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Runs the view until `q` or until `done` is set and the user quits; `latest` is the
/// trace copy the prober side publishes, `reset` asks it to reset the statistics.
pub fn run(
    host: String,
    latest: tokio::sync::watch::Receiver<Arc<Snapshot>>,
    reset: Arc<AtomicBool>,
    label: Option<Label>,
) -> std::io::Result<()> {
    let mut terminal = ratatui::init();
    let mut state = LiveState::new(host, latest.borrow().trace.clone());
    state.label = label;
    let result = (|| -> std::io::Result<()> {
        loop {
            // Only the `Arc` is cloned under the channel's lock: the trace's publisher never
            // waits for this thread (which may lose its CPU at any moment) to copy a trace.
            let copy = Arc::clone(&latest.borrow());
            state.update_snapshot(&copy);
            terminal.draw(|f| state.draw(f))?;
            if event::poll(Duration::from_millis(100))? {
                match event::read()? {
                    Event::Key(k) if k.kind == KeyEventKind::Press => match state.key(k.code) {
                        Action::Quit => return Ok(()),
                        Action::Reset => reset.store(true, Ordering::Relaxed),
                        Action::None => {}
                    },
                    // The next draw takes the new size.
                    _ => {}
                }
            }
        }
    })();
    ratatui::restore();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use netloom::probe::{Outcome, ProbeReply};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn answer(from: &str, ms: u64, outcome: Outcome) -> ProbeReply {
        ProbeReply {
            outcome,
            responder: Some(from.parse().expect("addr")),
            rtt: Some(Duration::from_millis(ms)),
            mpls: vec![],
        }
    }

    fn sample() -> Trace {
        let mut t = Trace::new("10.0.0.9".parse().expect("addr"), 30);
        for ms in [1, 3] {
            t.record(1, &answer("10.0.0.1", ms, Outcome::TtlExpired));
            t.record(2, &ProbeReply::no_reply());
            t.record(3, &answer("10.0.0.9", ms + 10, Outcome::Reply));
        }
        t
    }

    fn render(state: &LiveState, w: u16, h: u16) -> Vec<String> {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("terminal");
        terminal.draw(|f| state.draw(f)).expect("draw");
        let buf = terminal.backend().buffer().clone();
        (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| buf[(x, y)].symbol().to_owned())
                    .collect::<String>()
                    .trim_end()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn table_frame() {
        let mut state =
            LiveState::new("target".into(), Trace::new("10.0.0.9".parse().unwrap(), 30));
        state.update(&sample());
        let lines = render(&state, 90, 10);
        let want = [
            "netloom trace target (10.0.0.9)",
            "┌hops────────────────────────────────────────────────────────────────────────────────────┐",
            "│Hop  Host                          Loss%  Snt   Last   Avg    Best   Wrst   StDev  Jttr │",
            "│1.   10.0.0.1                      0.0%   2     3.0    2.0    1.0    3.0    1.4    2.0  │",
            "│2.   ???                           100.0% 2     0.0    0.0    0.0    0.0    0.0    0.0  │",
            "│3.   10.0.0.9                      0.0%   2     13.0   12.0   11.0   13.0   1.4    2.0  │",
            "│                                                                                        │",
            "│                                                                                        │",
            "└────────────────────────────────────────────────────────────────────────────────────────┘",
            "keys: p pause  r reset  d table/history/responders  q quit",
        ];
        assert_eq!(lines, want);
    }

    #[test]
    fn keys_pause_reset_switch_and_quit() {
        let mut state = LiveState::new("t".into(), Trace::new("10.0.0.9".parse().unwrap(), 30));
        assert_eq!(state.key(KeyCode::Char('p')), Action::None);
        state.update(&sample());
        assert_eq!(
            state.trace.hop(1).map(|h| h.sent),
            Some(0),
            "paused: frozen"
        );
        assert!(render(&state, 60, 8)[0].ends_with("[paused]"));
        state.key(KeyCode::Char('p'));
        state.update(&sample());
        assert_eq!(state.trace.hop(1).map(|h| h.sent), Some(2));
        state.key(KeyCode::Char('d'));
        assert_eq!(state.view, View::History);
        let lines = render(&state, 60, 8);
        assert!(lines[1].contains("history"), "{lines:#?}");
        assert!(lines[2].contains(" 1. 10.0.0.1"), "{lines:#?}");
        state.key(KeyCode::Char('d'));
        let lines = render(&state, 60, 8);
        assert!(lines[4].contains(" 3. 10.0.0.9"), "{lines:#?}");
        assert_eq!(state.key(KeyCode::Char('r')), Action::Reset);
        assert_eq!(state.key(KeyCode::Char('q')), Action::Quit);
    }

    #[test]
    fn history_counts_every_probe_and_restarts_on_reset() {
        let mut state = LiveState::new("t".into(), Trace::new("10.0.0.9".parse().unwrap(), 30));
        let mut t = sample();
        state.update(&t);
        assert_eq!(state.history[0], [3000, 3000]);
        assert_eq!(state.history[1], [0, 0]);
        t.record(1, &answer("10.0.0.1", 7, Outcome::TtlExpired));
        t.record(2, &ProbeReply::no_reply());
        state.update(&t);
        assert_eq!(state.history[0], [3000, 3000, 7000]);
        t.reset();
        t.record(1, &answer("10.0.0.1", 5, Outcome::TtlExpired));
        state.update(&t);
        assert_eq!(state.history[0], [5000]);
    }

    #[test]
    fn flows_map_names_each_responders_flows() {
        let target = "10.0.0.9".parse().expect("addr");
        let mut flows = Vec::new();
        for (i, branch) in ["10.0.1.1", "10.0.2.1", "10.0.1.1"].into_iter().enumerate() {
            let mut t = Trace::new(target, 30);
            t.record(1, &answer("10.0.0.1", 1, Outcome::TtlExpired));
            t.record(2, &answer(branch, 2 + i as u64, Outcome::TtlExpired));
            t.record(3, &answer("10.0.0.9", 3, Outcome::Reply));
            flows.push(t);
        }
        let flows = FlowTrace {
            first_port: 40_000,
            traces: flows,
        };
        let mut state = LiveState::new("t".into(), Trace::new(target, 30));
        state.update_snapshot(&Snapshot {
            trace: flows.merged(),
            flows: Some(flows),
        });
        state.key(KeyCode::Char('d'));
        state.key(KeyCode::Char('d'));
        let lines = render(&state, 100, 8);
        assert!(
            lines[1].contains("responders per hop, and their flows"),
            "{lines:#?}"
        );
        assert!(
            lines[2].contains(" 1. 10.0.0.1 [flows 0,1,2]"),
            "{lines:#?}"
        );
        assert!(
            lines[3].contains(" 2. 10.0.1.1 [flows 0,2]  10.0.2.1 [flows 1]"),
            "{lines:#?}"
        );
    }

    #[test]
    fn pmtu_column_when_measured() {
        let mut t = sample();
        t.set_pmtu(&[netloom::probe::trace::HopMtu {
            ttl: 1,
            responder: None,
            mtu: Some(1500),
            black_hole: false,
        }]);
        let mut state = LiveState::new("t".into(), Trace::new("10.0.0.9".parse().unwrap(), 30));
        state.update(&t);
        let lines = render(&state, 100, 8);
        assert!(lines[2].contains("Jttr  PMTU"), "{lines:#?}");
        assert!(
            lines[3].trim_end_matches('│').trim_end().ends_with("1500"),
            "{lines:#?}"
        );
        assert!(
            lines[4].trim_end_matches('│').trim_end().ends_with('-'),
            "{lines:#?}"
        );
    }

    #[test]
    fn any_size_draws() {
        let mut state = LiveState::new("t".into(), Trace::new("10.0.0.9".parse().unwrap(), 30));
        state.update(&sample());
        for view in 0..3 {
            for (w, h) in [(1, 1), (20, 3), (200, 60)] {
                render(&state, w, h);
            }
            let _ = view;
            state.key(KeyCode::Char('d'));
        }
    }
}
