//! Parsing one command line: `TOKEN COMMAND [NAME VALUE]...` into a [`Request`].
//!
//! The rules are mtr-packet's (`packet/cmdparse.c`, `packet/command.c`): tokens are split on
//! C `isspace` bytes; fewer than two tokens, an argument name without a value, more than 16
//! argument pairs or a token number outside the C `long` range is a parse error
//! (`0 command-parse-error`); the token number is read like `strtol` (a leading sign and
//! digits, anything after them ignored, no digits meaning 0) and wraps to 32 bits like C's
//! `int`. Unknown argument names of `send-probe` are ignored, as mtr-packet does, unless
//! [`ParseLimits::strict_arguments`] is set.

use std::net::IpAddr;

use crate::Protocol;

/// Most `NAME VALUE` pairs in one command (mtr-packet's `MAX_COMMAND_ARGUMENTS`).
///
/// ```
/// use netloom_probe::mtr_packet::{parse_line, MAX_COMMAND_ARGUMENTS};
/// let line = format!("1 x{}", " a b".repeat(MAX_COMMAND_ARGUMENTS + 1));
/// assert!(parse_line(line.as_bytes()).is_err());
/// ```
pub const MAX_COMMAND_ARGUMENTS: usize = 16;

/// Limits and strictness of the parser; the defaults are mtr-packet's.
///
/// ```
/// use netloom_probe::mtr_packet::ParseLimits;
/// let limits = ParseLimits::default();
/// assert_eq!(limits.max_packet_size, 9_000);
/// assert!(!limits.strict_arguments);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest `size` accepted; larger gets `invalid-argument`.
    pub max_packet_size: usize,
    /// Largest `timeout` in seconds accepted; larger gets `invalid-argument`.
    pub max_timeout_secs: u64,
    /// Reply `invalid-argument` to `send-probe` arguments this program does not know,
    /// instead of ignoring them as mtr-packet does.
    pub strict_arguments: bool,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_packet_size: 9_000,
            max_timeout_secs: 3_600,
            strict_arguments: false,
        }
    }
}

/// Why a line is not a command at all: answered with `0 command-parse-error`.
///
/// ```
/// use netloom_probe::mtr_packet::{parse_line, CommandParseError};
/// assert_eq!(parse_line(b"1"), Err(CommandParseError::TooFewTokens));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandParseError {
    /// A command needs at least a token and a command name.
    #[error("a command needs a token and a name")]
    TooFewTokens,
    /// The last argument name has no value.
    #[error("argument name without a value")]
    MissingValue,
    /// More than [`MAX_COMMAND_ARGUMENTS`] pairs.
    #[error("more than {MAX_COMMAND_ARGUMENTS} arguments (the limit is MAX_COMMAND_ARGUMENTS)")]
    TooManyArguments,
    /// The token number does not fit a C `long`.
    #[error("token number out of range")]
    TokenOutOfRange,
}

/// A syntactically valid command line, borrowing from it.
///
/// ```
/// use netloom_probe::mtr_packet::parse_line;
/// let c = parse_line(b"7 check-support feature udp").unwrap();
/// assert_eq!((c.token, c.name), (7, &b"check-support"[..]));
/// assert_eq!(c.argument(b"feature"), Some(&b"udp"[..]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command<'a> {
    /// The number replies carry back.
    pub token: i32,
    /// The command name (`send-probe`, `check-support`, …).
    pub name: &'a [u8],
    /// `NAME VALUE` pairs in line order.
    pub arguments: Vec<(&'a [u8], &'a [u8])>,
}

impl<'a> Command<'a> {
    /// The value of the first argument called `name`.
    ///
    /// ```
    /// let c = netloom_probe::mtr_packet::parse_line(b"1 x a 1 a 2").unwrap();
    /// assert_eq!(c.argument(b"a"), Some(&b"1"[..]));
    /// ```
    pub fn argument(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.arguments
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

/// C's `isspace` in the C locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Splits a line into a [`Command`] (`cmdparse.c`). A NUL byte ends the line, as it ends a
/// C string.
///
/// ```
/// use netloom_probe::mtr_packet::{parse_line, CommandParseError};
/// assert_eq!(parse_line(b"abc send-probe").unwrap().token, 0); // strtol: no digits -> 0
/// assert_eq!(parse_line(b"1 send-probe ttl"), Err(CommandParseError::MissingValue));
/// ```
pub fn parse_line(line: &[u8]) -> Result<Command<'_>, CommandParseError> {
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    let mut tokens = line.split(|&b| is_c_space(b)).filter(|t| !t.is_empty());
    let (Some(token), Some(name)) = (tokens.next(), tokens.next()) else {
        return Err(CommandParseError::TooFewTokens);
    };
    let mut arguments = Vec::new();
    while let Some(arg_name) = tokens.next() {
        // cmdparse.c tokenizes at most 2 + 2 * MAX_COMMAND_ARGUMENTS tokens.
        if arguments.len() >= MAX_COMMAND_ARGUMENTS {
            return Err(CommandParseError::TooManyArguments);
        }
        let Some(value) = tokens.next() else {
            return Err(CommandParseError::MissingValue);
        };
        arguments.push((arg_name, value));
    }
    let token = strtol(token);
    if token.overflow {
        return Err(CommandParseError::TokenOutOfRange);
    }
    Ok(Command {
        // C stores the long in an int: keep the low 32 bits.
        token: token.value as i32,
        name,
        arguments,
    })
}

/// The result of C's `strtol(s, &end, 10)`: the value (saturated at the `long` range, as C
/// does), whether it overflowed (`ERANGE`), and whether `end` reached the end.
struct Strtol {
    value: i64,
    overflow: bool,
    complete: bool,
}

/// `strtol` for base 10 without leading blanks (tokens have none). No digits at all gives 0
/// and `complete == false`.
fn strtol(s: &[u8]) -> Strtol {
    let (negative, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut value: i64 = 0;
    let mut overflow = false;
    for &d in &digits[..n] {
        let d = i64::from(d - b'0');
        let next = value.checked_mul(10).and_then(|v| {
            if negative {
                v.checked_sub(d)
            } else {
                v.checked_add(d)
            }
        });
        match next {
            Some(v) => value = v,
            None => {
                overflow = true;
                value = if negative { i64::MIN } else { i64::MAX };
                break;
            }
        }
    }
    Strtol {
        value,
        overflow,
        complete: n > 0 && n == digits.len(),
    }
}

/// A number argument as mtr-packet's decoder reads it: `None` (invalid-argument at once)
/// unless `strtol` consumes every byte; then `Ok(v)` if it is in `range`, `Err(())` if not
/// (C would have truncated it; answered invalid-argument where C would send).
fn number_in(value: &[u8], range: std::ops::RangeInclusive<i64>) -> Option<Result<i64, ()>> {
    let n = strtol(value);
    n.complete
        .then(|| range.contains(&n.value).then_some(n.value).ok_or(()))
}

/// What a `send-probe` asks for, decoded and range-checked.
///
/// ```
/// use netloom_probe::mtr_packet::{parse_line, Request, ParseLimits};
/// let c = parse_line(b"9 send-probe ip-4 192.0.2.1 ttl 3 protocol udp port 53").unwrap();
/// let Request::SendProbe(p) = Request::decode(&c, &ParseLimits::default()) else { panic!() };
/// assert_eq!((p.ttl, p.port), (3, 53));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendProbe {
    /// 4 or 6 (`ip-4` / `ip-6`), 0 when neither was given.
    pub ip_version: u8,
    /// The target, as text (validated when the probe is sent, like mtr-packet).
    pub remote_address: Vec<u8>,
    /// `local-ip-4` / `local-ip-6`, as text.
    pub local_address: Option<Vec<u8>>,
    /// `protocol` (default ICMP).
    pub protocol: Protocol,
    /// `port` (0: the protocol's default).
    pub port: u16,
    /// `local-port` (0: any; otherwise at least 1024).
    pub local_port: u16,
    /// `tos`.
    pub tos: u8,
    /// `mark` (0: none).
    pub mark: u32,
    /// `size` of the whole packet (default 64).
    pub size: usize,
    /// `bit-pattern`.
    pub bit_pattern: u8,
    /// `ttl` (default 255).
    pub ttl: u8,
    /// `timeout` in seconds (default 10).
    pub timeout_secs: u64,
    /// `local-device` (newer mtr-packet): bind to this interface.
    pub device: Option<String>,
    /// A number was well-formed but out of its range (`ttl 300`, `tos -1`, ...). mtr-packet
    /// would truncate it and send; this one answers `invalid-argument` at the point where
    /// mtr-packet checks the address (after the IP version, protocol and in-flight checks),
    /// so every other reply stays the same. The field keeps its default.
    pub out_of_range: bool,
}

impl Default for SendProbe {
    fn default() -> Self {
        SendProbe {
            ip_version: 0,
            remote_address: Vec::new(),
            local_address: None,
            protocol: Protocol::Icmp,
            port: 0,
            local_port: 0,
            tos: 0,
            mark: 0,
            size: 64,
            bit_pattern: 0,
            ttl: 255,
            timeout_secs: 10,
            device: None,
            out_of_range: false,
        }
    }
}

impl SendProbe {
    /// Parses `remote_address` as an address of `ip_version` (like `inet_pton`).
    ///
    /// ```
    /// use netloom_probe::mtr_packet::SendProbe;
    /// let p = SendProbe { ip_version: 4, remote_address: b"::1".to_vec(), ..Default::default() };
    /// assert_eq!(p.remote(), None); // an IPv6 address given as ip-4
    /// ```
    pub fn remote(&self) -> Option<IpAddr> {
        parse_addr(self.ip_version, &self.remote_address)
    }

    /// Parses `local_address` like [`SendProbe::remote`]: `Ok(None)` when absent, `Err(())`
    /// when present but not an address of `ip_version`.
    ///
    /// ```
    /// use netloom_probe::mtr_packet::SendProbe;
    /// let p = SendProbe { ip_version: 6, local_address: Some(b"::1".to_vec()), ..Default::default() };
    /// assert_eq!(p.local(), Ok(Some("::1".parse().unwrap())));
    /// ```
    #[allow(clippy::result_unit_err)]
    pub fn local(&self) -> Result<Option<IpAddr>, ()> {
        match &self.local_address {
            None => Ok(None),
            Some(text) => parse_addr(self.ip_version, text).map(Some).ok_or(()),
        }
    }
}

fn parse_addr(ip_version: u8, text: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(text).ok()?;
    match ip_version {
        4 => text.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
        6 => text.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6),
        _ => None,
    }
}

/// A decoded request, or the reply-worthy reason it cannot be carried out.
///
/// ```
/// use netloom_probe::mtr_packet::{parse_line, Request, ParseLimits};
/// let c = parse_line(b"3 frobnicate").unwrap();
/// assert_eq!(Request::decode(&c, &ParseLimits::default()), Request::Unknown);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `send-probe` with valid arguments.
    SendProbe(SendProbe),
    /// `check-support feature NAME`.
    CheckSupport {
        /// The feature asked about (lossy UTF-8).
        feature: String,
    },
    /// A known command with a missing or invalid argument: `invalid-argument`.
    InvalidArgument,
    /// Any other command name: `unknown-command`.
    Unknown,
}

impl Request {
    /// Interprets a parsed [`Command`] (`command.c`: `decode_probe_argument` and friends):
    /// a malformed number or protocol is `invalid-argument` at once; a well-formed number
    /// out of its range (which C would truncate) sets [`SendProbe::out_of_range`].
    ///
    /// ```
    /// use netloom_probe::mtr_packet::{parse_line, Request, ParseLimits};
    /// let c = parse_line(b"1 send-probe ip-4 127.0.0.1 ttl 1x").unwrap();
    /// assert_eq!(Request::decode(&c, &ParseLimits::default()), Request::InvalidArgument);
    /// let c = parse_line(b"1 send-probe ip-4 127.0.0.1 ttl 256").unwrap();
    /// let Request::SendProbe(p) = Request::decode(&c, &ParseLimits::default()) else { panic!() };
    /// assert!(p.out_of_range);
    /// ```
    pub fn decode(command: &Command<'_>, limits: &ParseLimits) -> Request {
        match command.name {
            b"check-support" => match command.argument(b"feature") {
                Some(f) => Request::CheckSupport {
                    feature: String::from_utf8_lossy(f).into_owned(),
                },
                None => Request::InvalidArgument,
            },
            b"send-probe" => {
                let mut probe = SendProbe::default();
                for (name, value) in &command.arguments {
                    if decode_probe_argument(&mut probe, name, value, limits).is_none() {
                        return Request::InvalidArgument;
                    }
                }
                Request::SendProbe(probe)
            }
            _ => Request::Unknown,
        }
    }
}

/// Applies one `send-probe` argument; `None` means `invalid-argument`.
fn decode_probe_argument(
    p: &mut SendProbe,
    name: &[u8],
    value: &[u8],
    limits: &ParseLimits,
) -> Option<()> {
    let max_size = i64::try_from(limits.max_packet_size).unwrap_or(i64::MAX);
    let max_timeout = i64::try_from(limits.max_timeout_secs).unwrap_or(i64::MAX);
    match name {
        b"ip-4" | b"ip-6" => {
            p.ip_version = if name == b"ip-4" { 4 } else { 6 };
            p.remote_address = value.to_vec();
        }
        b"local-ip-4" | b"local-ip-6" => p.local_address = Some(value.to_vec()),
        b"protocol" => {
            p.protocol = Protocol::named(value)?;
        }
        b"port" => set(
            &mut p.port,
            number_in(value, 0..=65_535)?,
            &mut p.out_of_range,
        ),
        b"local-port" => {
            // Ports below 1024 need privileges: mtr-packet refuses them while decoding.
            let port = number_in(value, i64::MIN..=65_535)?;
            if matches!(port, Ok(n) if n < 1024) {
                return None;
            }
            set(&mut p.local_port, port, &mut p.out_of_range)
        }
        b"tos" => set(&mut p.tos, number_in(value, 0..=255)?, &mut p.out_of_range),
        b"mark" => set(
            &mut p.mark,
            number_in(value, 0..=i64::from(u32::MAX))?,
            &mut p.out_of_range,
        ),
        b"size" => set(
            &mut p.size,
            number_in(value, 0..=max_size)?,
            &mut p.out_of_range,
        ),
        b"bit-pattern" => set(
            &mut p.bit_pattern,
            number_in(value, 0..=255)?,
            &mut p.out_of_range,
        ),
        b"ttl" => set(&mut p.ttl, number_in(value, 1..=255)?, &mut p.out_of_range),
        b"timeout" => set(
            &mut p.timeout_secs,
            number_in(value, 0..=max_timeout)?,
            &mut p.out_of_range,
        ),
        b"local-device" => p.device = Some(std::str::from_utf8(value).ok()?.to_owned()),
        _ if limits.strict_arguments => return None,
        _ => {}
    }
    Some(())
}

/// Stores an in-range number in `field`, or notes that it was out of range.
fn set<T: TryFrom<i64>>(field: &mut T, value: Result<i64, ()>, out_of_range: &mut bool) {
    match value.ok().and_then(|v| T::try_from(v).ok()) {
        Some(v) => *field = v,
        None => *out_of_range = true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(line: &str) -> Request {
        let c = parse_line(line.as_bytes()).expect("parses");
        Request::decode(&c, &ParseLimits::default())
    }

    #[test]
    fn token_follows_strtol_and_wraps_like_int() {
        assert_eq!(
            parse_line(b"99999999999 x").map(|c| c.token),
            Ok(1_215_752_191)
        );
        assert_eq!(parse_line(b"4294967297 x").map(|c| c.token), Ok(1));
        assert_eq!(parse_line(b"-5 x").map(|c| c.token), Ok(-5));
        assert_eq!(parse_line(b"12abc x").map(|c| c.token), Ok(12));
        assert_eq!(parse_line(b"+ x").map(|c| c.token), Ok(0));
        assert_eq!(
            parse_line(b"99999999999999999999 x"),
            Err(CommandParseError::TokenOutOfRange)
        );
    }

    #[test]
    fn splits_on_every_c_space() {
        let c = parse_line(b" \t1\x0bsend-probe\x0c\rip-4  1.2.3.4 ").expect("parses");
        assert_eq!(c.token, 1);
        assert_eq!(c.arguments, vec![(&b"ip-4"[..], &b"1.2.3.4"[..])]);
    }

    #[test]
    fn structural_errors() {
        assert_eq!(parse_line(b""), Err(CommandParseError::TooFewTokens));
        assert_eq!(parse_line(b"   "), Err(CommandParseError::TooFewTokens));
        assert_eq!(parse_line(b"1 a b"), Err(CommandParseError::MissingValue));
        let mut many = String::from("1 x");
        for i in 0..16 {
            many.push_str(&format!(" a{i} v"));
        }
        assert!(parse_line(many.as_bytes()).is_ok());
        many.push_str(" extra v");
        assert_eq!(
            parse_line(many.as_bytes()),
            Err(CommandParseError::TooManyArguments)
        );
        // A NUL ends the C string.
        assert_eq!(
            parse_line(b"1\0 send-probe"),
            Err(CommandParseError::TooFewTokens)
        );
    }

    #[test]
    fn every_protocol_name_decodes_and_others_are_invalid() {
        for proto in Protocol::ALL {
            let line = format!("1 send-probe ip-4 127.0.0.1 protocol {}", proto.name());
            let Request::SendProbe(p) = decode(&line) else {
                panic!("{line} decodes")
            };
            assert_eq!(p.protocol, proto);
        }
        for bad in ["quic", "ICMP", "udp6", "tc"] {
            let line = format!("1 send-probe ip-4 127.0.0.1 protocol {bad}");
            assert_eq!(decode(&line), Request::InvalidArgument, "{line}");
        }
    }

    #[test]
    fn send_probe_defaults_are_mtr_packets() {
        let Request::SendProbe(p) = decode("1 send-probe ip-6 ::1") else {
            panic!("decodes")
        };
        assert_eq!(p.remote(), Some("::1".parse().expect("addr")));
        assert_eq!((p.ttl, p.size, p.timeout_secs), (255, 64, 10));
        assert_eq!(p.protocol, Protocol::Icmp);
    }

    #[test]
    fn every_argument_decodes() {
        let Request::SendProbe(p) = decode(
            "1 send-probe ip-4 10.0.0.1 local-ip-4 10.0.0.2 protocol tcp port 443 \
             local-port 2000 tos 16 mark 7 size 100 bit-pattern 255 ttl 9 timeout 2 \
             local-device eth0",
        ) else {
            panic!("decodes")
        };
        assert_eq!(p.local(), Ok(Some("10.0.0.2".parse().expect("addr"))));
        assert_eq!(p.protocol, Protocol::Tcp);
        assert_eq!((p.port, p.local_port, p.tos, p.mark), (443, 2000, 16, 7));
        assert_eq!(
            (p.size, p.bit_pattern, p.ttl, p.timeout_secs),
            (100, 255, 9, 2)
        );
        assert_eq!(p.device.as_deref(), Some("eth0"));
    }

    #[test]
    fn malformed_values_are_invalid_arguments() {
        for bad in [
            "ttl 1x",
            "ttl 0x10",
            "ttl +",
            "local-port 1023",
            "protocol ICMP",
            "protocol raw",
        ] {
            assert_eq!(
                decode(&format!("1 send-probe ip-4 1.2.3.4 {bad}")),
                Request::InvalidArgument,
                "{bad}"
            );
        }
    }

    #[test]
    fn out_of_range_values_are_flagged_and_keep_defaults() {
        for bad in [
            "ttl 0",
            "ttl 256",
            "ttl -1",
            "ttl 99999999999999999999",
            "port 65536",
            "local-port 65536",
            "tos 256",
            "mark -1",
            "size -1",
            "size 9001",
            "bit-pattern 256",
            "timeout -1",
            "timeout 3601",
        ] {
            let Request::SendProbe(p) = decode(&format!("1 send-probe ip-4 1.2.3.4 {bad}")) else {
                panic!("{bad} decodes");
            };
            assert!(p.out_of_range, "{bad}");
            assert_eq!((p.ttl, p.size, p.timeout_secs), (255, 64, 10), "{bad}");
        }
    }

    #[test]
    fn unknown_arguments_are_ignored_unless_strict() {
        let c = parse_line(b"1 send-probe ip-4 1.2.3.4 colour blue").expect("parses");
        assert!(matches!(
            Request::decode(&c, &ParseLimits::default()),
            Request::SendProbe(_)
        ));
        let strict = ParseLimits {
            strict_arguments: true,
            ..Default::default()
        };
        assert_eq!(Request::decode(&c, &strict), Request::InvalidArgument);
    }

    #[test]
    fn check_support_needs_a_feature() {
        assert_eq!(decode("4 check-support"), Request::InvalidArgument);
        assert_eq!(
            decode("4 check-support feature tcp"),
            Request::CheckSupport {
                feature: "tcp".into()
            }
        );
    }
}
