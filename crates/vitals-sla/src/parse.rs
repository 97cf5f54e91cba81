//! Parsing one SLA log line, by hand, on bytes.
//!
//! A line looks like `2017-06-26 08:22:05,751 [task] INFO  logger - LogPoint="x" … Result=OK …`:
//! a log4j prefix, then `Key="quoted value"` or `Key=bare value` pairs. Only the six keys the report
//! needs are extracted; the scan stops as soon as all six are seen, so the long tail of each line
//! (endpoints, generic parameters) is never touched.
//!
//! How a pair is found: the key is the last space-separated token before a `=`; a quoted value runs
//! to the next `"`; a bare value runs up to the space before the next key. That way bare values may
//! contain spaces (`Result=Connection refused ClientIP=…`) and stray tokens between pairs
//! (`GenericCallParms(0)= {  }`) do no harm. Quoted values cannot contain `"` (the format has no
//! escape), so a `"` never needs to be looked at twice.

use std::fmt;

use memchr::memchr;

/// The fields of one SLA line that the report uses, borrowed from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaLine<'a> {
    /// `LogPoint`: the service operation or `DB_Operation`-like measuring point.
    pub log_point: &'a [u8],
    /// `LogPointUniqId`, `None` when absent or `<empty>`.
    pub uniq_id: Option<&'a [u8]>,
    /// `Duration`, converted to microseconds.
    pub duration_us: u64,
    /// `MessageId`, `None` when absent or `<empty>`.
    pub message_id: Option<&'a [u8]>,
    /// `Result` is `OK` (any case).
    pub ok: bool,
    /// `SOAPOperation`, `None` when absent or `<empty>`; a line with one is a service call.
    pub soap_operation: Option<&'a [u8]>,
}

/// Why a line was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// A required key is not on the line.
    Missing(&'static str),
    /// A required key's quoted value has no closing `"` (a line cut short).
    Unterminated(&'static str),
    /// `LogPoint` is empty or `<empty>`.
    EmptyLogPoint,
    /// `Duration` could not be read.
    Duration(DurationError),
    /// `--by` needs the line's leading `YYYY-MM-DD HH` timestamp, and there is none.
    NoTimestamp,
    /// (gzip input only) a line longer than the streaming buffer allows.
    TooLong,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::Missing(k) => write!(f, "no {k}"),
            Malformed::Unterminated(k) => write!(f, "{k} value has no closing quote"),
            Malformed::EmptyLogPoint => f.write_str("LogPoint is empty"),
            Malformed::Duration(e) => write!(f, "Duration: {e}"),
            Malformed::NoTimestamp => f.write_str("no YYYY-MM-DD HH timestamp at line start"),
            Malformed::TooLong => f.write_str("line too long"),
        }
    }
}

/// Why a `Duration` value could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationError {
    /// No digits where the number should be.
    NoNumber,
    /// A number without a unit: ambiguous, so refused.
    NoUnit,
    /// A unit other than `microseconds`, `us`, `µs`, `milliseconds`, `ms`, `seconds`, `s`.
    UnknownUnit,
    /// Larger than [`MAX_DURATION_US`].
    OutOfRange,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DurationError::NoNumber => "no number",
            DurationError::NoUnit => "no unit",
            DurationError::UnknownUnit => {
                "unknown unit (use microseconds, us, milliseconds, ms, seconds or s)"
            }
            DurationError::OutOfRange => "out of range",
        })
    }
}

/// Durations above this (about 285 years) are refused, so that sums over billions of lines
/// still fit in 64 bits of microseconds many times over.
pub const MAX_DURATION_US: u64 = 1 << 53;

const F_LOG_POINT: u8 = 1;
const F_UNIQ: u8 = 2;
const F_DURATION: u8 = 4;
const F_MESSAGE: u8 = 8;
const F_RESULT: u8 = 16;
const F_SOAP: u8 = 32;
const F_ALL: u8 = 63;

const EMPTY: &[u8; 7] = b"<empty>";

/// `a == b` for a short constant `b`, compiled to a few integer compares rather than a call.
#[inline(always)]
fn eq_const<const N: usize>(a: &[u8], b: &[u8; N]) -> bool {
    <&[u8; N]>::try_from(a).is_ok_and(|a| a == b)
}

const fn tail_of(key: &[u8]) -> u64 {
    // The last (up to) 8 bytes of `key` as they appear in the 8 bytes before `=`, read as a
    // little-endian u64; shorter keys are compared on their top bytes only.
    let mut v = 0u64;
    let mut k = 0;
    let n = if key.len() < 8 { key.len() } else { 8 };
    while k < n {
        v |= (key[key.len() - n + k] as u64) << (8 * (8 - n + k));
        k += 1;
    }
    v
}

const T_LOG_POINT: u64 = tail_of(b"LogPoint");
const T_DURATION: u64 = tail_of(b"Duration");
const T_MESSAGE: u64 = tail_of(b"MessageId");
const T_SOAP: u64 = tail_of(b"SOAPOperation");
const T_UNIQ: u64 = tail_of(b"LogPointUniqId");
const T_RESULT: u64 = tail_of(b"Result");

/// The wanted key that ends just before the `=` at `eq`, if any: the whole run of non-blank
/// bytes before `eq` (not reaching before `floor`) must be that key. Decided from one 8-byte
/// load in the common case instead of walking back over the key.
#[inline(always)]
fn key_at(line: &[u8], floor: usize, eq: usize) -> u8 {
    let tail = match eq.checked_sub(8).and_then(|s| line.get(s..eq)) {
        Some(w) => u64::from_le_bytes(w.try_into().unwrap_or([0; 8])),
        None => {
            let mut w = [0u8; 8];
            w[8 - eq.min(8)..].copy_from_slice(&line[eq.saturating_sub(8)..eq]);
            u64::from_le_bytes(w)
        }
    };
    let field = match tail {
        T_LOG_POINT => F_LOG_POINT,
        T_DURATION => F_DURATION,
        T_MESSAGE => F_MESSAGE,
        T_SOAP => F_SOAP,
        T_UNIQ => F_UNIQ,
        t if t & !0xffff == T_RESULT => F_RESULT,
        _ => return 0,
    };
    let Some(start) = eq.checked_sub(field_name(field).len()) else {
        return 0;
    };
    // The tail covered keys of up to 8 bytes; longer ones need their first bytes checked.
    let head = &line[start..];
    let prefix = match field {
        F_MESSAGE => head.first() == Some(&b'M'),
        F_SOAP => head.get(..5).is_some_and(|h| eq_const(h, b"SOAPO")),
        F_UNIQ => head.get(..6).is_some_and(|h| eq_const(h, b"LogPoi")),
        _ => true,
    };
    let whole = start >= floor && prefix && (start == floor || is_blank(line[start - 1]));
    if whole {
        field
    } else {
        0
    }
}

fn field_name(field: u8) -> &'static str {
    match field {
        F_LOG_POINT => "LogPoint",
        F_UNIQ => "LogPointUniqId",
        F_DURATION => "Duration",
        F_MESSAGE => "MessageId",
        F_RESULT => "Result",
        _ => "SOAPOperation",
    }
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Raw values of the wanted keys, in `field_of` bit order.
#[derive(Default)]
struct Raw<'a> {
    values: [Option<&'a [u8]>; 6],
    found: u8,
    /// The wanted key whose quoted value was cut off, if any.
    unterminated: u8,
    /// `Duration` in microseconds when the fast path has read it already.
    duration_us: Option<u64>,
}

impl<'a> Raw<'a> {
    fn set(&mut self, field: u8, value: &'a [u8]) {
        self.values[field.trailing_zeros() as usize] = Some(value);
        self.found |= field;
    }

    fn get(&self, field: u8) -> Option<&'a [u8]> {
        self.values[field.trailing_zeros() as usize]
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// 0x80 in every byte of `x` that is zero, 0 elsewhere (exact: no carry crosses bytes).
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7)
}

/// Position of the first `byte` at or after `from`, eight bytes at a time, inline: values are
/// short, so this beats a call into a vectorised search.
#[inline(always)]
fn find_byte(hay: &[u8], from: usize, byte: u8) -> Option<usize> {
    let pattern = ONES * u64::from(byte);
    let mut i = from;
    while let Some(w) = hay.get(i..i + 8) {
        let m = zero_bytes(u64::from_le_bytes(w.try_into().unwrap_or([0; 8])) ^ pattern);
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    hay.get(i..)?.iter().position(|&b| b == byte).map(|k| i + k)
}

/// Position of the first `a` or `b` at or after `from`.
#[inline(always)]
fn find_byte2(hay: &[u8], from: usize, a: u8, b: u8) -> Option<usize> {
    let (pa, pb) = (ONES * u64::from(a), ONES * u64::from(b));
    let mut i = from;
    while let Some(w) = hay.get(i..i + 8) {
        let w = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
        let m = zero_bytes(w ^ pa) | zero_bytes(w ^ pb);
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    hay.get(i..)?
        .iter()
        .position(|&c| c == a || c == b)
        .map(|k| i + k)
}

/// `line[at..]` starts with `text`: the position after it.
#[inline(always)]
fn expect<const N: usize>(line: &[u8], at: usize, text: &[u8; N]) -> Option<usize> {
    line.get(at..at + N)
        .is_some_and(|t| eq_const(t, text))
        .then_some(at + N)
}

/// A quoted value starting at `at` (after its opening quote): the value and the position after
/// its closing quote.
#[inline(always)]
fn quoted(line: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let end = find_byte(line, at, b'"')?;
    Some((&line[at..end], end + 1))
}

/// Like [`quoted`] for a value that usually has length `len` (timestamps; message ids, whose
/// length is learned from the line before): checks that guess with a few branch-free word
/// compares, which saves the mispredicted exit of a scan loop; falls back to scanning when the
/// guess is wrong or shorter than a word.
#[inline(always)]
fn quoted_usually(line: &[u8], at: usize, len: usize) -> Option<(&[u8], usize)> {
    if len >= 8 {
        if let Some(v) = line.get(at..at + len + 1) {
            let quotes = ONES * u64::from(b'"');
            let word = |i: usize| u64::from_le_bytes(v[i..i + 8].try_into().unwrap_or([0; 8]));
            let mut found = 0;
            let mut i = 0;
            while i + 8 <= len {
                found |= zero_bytes(word(i) ^ quotes);
                i += 8;
            }
            if i < len {
                // The last, partial word: the 8 bytes ending at `len` (overlapping).
                found |= zero_bytes(word(len - 8) ^ quotes);
            }
            if found == 0 && v[len] == b'"' {
                return Some((&v[..len], at + len + 1));
            }
        }
    }
    quoted(line, at)
}

/// The platform's own `Duration` value, `NNN microseconds"` with one to seven digits, read in
/// place at `at`: the position of its closing quote and the number. Eight digits at a time with
/// bit tricks, so that neither the value's end nor the number needs a loop; `None` for anything
/// else, which [`quoted`] and [`parse_duration_us`] then read (to the same result).
#[inline(always)]
fn microseconds(line: &[u8], at: usize) -> Option<(usize, u64)> {
    let w = u64::from_le_bytes(*line.get(at..)?.first_chunk::<8>()?);
    // Each byte minus '0': a digit is 0..=9; anything else has its top bit set after adding
    // 0x76 or before. A carry out of a non-digit byte only disturbs the bytes above it, and only
    // the lowest non-digit counts.
    let t = w.wrapping_sub(ONES * u64::from(b'0'));
    let non_digit = (t.wrapping_add(ONES * 0x76) | t) & (ONES * 0x80);
    let digits = (non_digit.trailing_zeros() / 8) as usize;
    if !(1..=7).contains(&digits) {
        return None;
    }
    let end = expect(line, at + digits, b" microseconds\"")? - 1;
    // The digits into the top bytes (zeros, i.e. leading zero digits, below), then pairs,
    // quads and the whole, most significant digit first.
    let mut x = t << (8 * (8 - digits));
    x = (x.wrapping_mul(10) + (x >> 8)) & 0x00ff_00ff_00ff_00ff;
    x = (x.wrapping_mul(100) + (x >> 16)) & 0x0000_ffff_0000_ffff;
    x = (x.wrapping_mul(10_000) + (x >> 32)) & 0xffff_ffff;
    Some((end, x))
}

/// What the previous line of a log looked like, so that the next one's values can be found by
/// checking a guess rather than by searching: the message ids of one log all have the same
/// length (28 on the platform: base64 of 20 bytes), whatever it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hints {
    message_id_len: usize,
}

impl Default for Hints {
    fn default() -> Self {
        Hints { message_id_len: 28 }
    }
}

/// A bare value starting at `at` that ends at the next space: the value and that space. `None`
/// when the value starts with a quote (then it is a quoted value) or holds a `=` (then the
/// general scan decides where the next key starts).
#[inline(always)]
fn bare(line: &[u8], at: usize) -> Option<(&[u8], usize)> {
    if line.get(at) == Some(&b'"') {
        return None;
    }
    let end = find_byte2(line, at, b' ', b'=')?;
    if line[end] == b' ' {
        Some((trim(&line[at..end]), end))
    } else {
        None
    }
}

/// Fast path for lines in exactly the platform's layout (`LogPoint="…" LogPointUniqId="…"
/// StartTime="…" EndTime="…" Duration="…" MessageId="…" RequestSize=… ReplySize=… Result=…
/// ClientIP="…" SOAPOperation="…"`): the keys are checked where they must be rather than found,
/// which costs far fewer unpredictable branches. `None` on any deviation, and the line goes to
/// the general [`scan`], which gives the same values for every line this accepts.
fn scan_platform_layout<'a>(line: &'a [u8], hints: &mut Hints) -> Option<Raw<'a>> {
    // The first `=` must end the first key, `LogPoint`, a whole token.
    let eq = find_byte(line, 0, b'=')?;
    let start = eq.checked_sub(8)?;
    if start > 0 && !is_blank(line[start - 1]) {
        return None;
    }
    let mut raw = Raw::default();
    let p = expect(line, start, b"LogPoint=\"")?;
    let (v, p) = quoted(line, p)?;
    raw.set(F_LOG_POINT, v);
    let p = expect(line, p, b" LogPointUniqId=\"")?;
    let (v, p) = quoted(line, p)?;
    raw.set(F_UNIQ, v);
    // `2017-06-26 08:22:05.750`
    let p = expect(line, p, b" StartTime=\"")?;
    let (_, p) = quoted_usually(line, p, 23)?;
    let p = expect(line, p, b" EndTime=\"")?;
    let (_, p) = quoted_usually(line, p, 23)?;
    let p = expect(line, p, b" Duration=\"")?;
    let (v, p) = match microseconds(line, p) {
        Some((end, us)) => {
            raw.duration_us = Some(us);
            (&line[p..end], end + 1)
        }
        None => quoted(line, p)?,
    };
    raw.set(F_DURATION, v);
    // Base64 of 20 bytes: `AAABXOMQcV1mt6jYItbXz1NPU0k=`
    let p = expect(line, p, b" MessageId=\"")?;
    let (v, p) = quoted_usually(line, p, hints.message_id_len)?;
    hints.message_id_len = v.len();
    raw.set(F_MESSAGE, v);
    let p = expect(line, p, b" RequestSize=")?;
    let (_, p) = bare(line, p)?;
    let p = expect(line, p, b" ReplySize=")?;
    let (_, p) = bare(line, p)?;
    let p = expect(line, p, b" Result=")?;
    let (v, p) = bare(line, p)?;
    raw.set(F_RESULT, v);
    let p = expect(line, p, b" ClientIP=\"")?;
    let (_, p) = quoted(line, p)?;
    let p = expect(line, p, b" SOAPOperation=\"")?;
    let (v, _) = quoted(line, p)?;
    raw.set(F_SOAP, v);
    Some(raw)
}

/// Bit 7 of byte k set when byte k of `w` is `=` or `"`.
#[inline(always)]
fn events(w: u64) -> u64 {
    zero_bytes(w ^ (ONES * u64::from(b'='))) | zero_bytes(w ^ (ONES * u64::from(b'"')))
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between pairs: the next `=` ends a key.
    Key,
    /// Just after `="`: the next event is that opening quote.
    Open,
    /// Inside a quoted value: only the closing `"` matters.
    Quoted,
    /// Inside a bare value: it ends where the key before the next `=` begins.
    Bare,
}

/// Walks the line's `=` and `"` bytes in order, found eight at a time with SWAR bit tricks so
/// that the common case costs a few integer operations per eight bytes and no calls.
fn scan(line: &[u8]) -> Raw<'_> {
    let mut raw = Raw::default();
    let mut state = State::Key;
    // Where the current key may start (after the previous value) and where a value starts.
    let mut segment = 0;
    let mut value_start = 0;
    let mut field = 0u8;
    let mut base = 0;
    while base < line.len() {
        let word = match line.get(base..base + 8) {
            Some(w) => u64::from_le_bytes(w.try_into().unwrap_or([0; 8])),
            None => {
                // Tail: pad with zero bytes, which are never events.
                let mut w = [0u8; 8];
                w[..line.len() - base].copy_from_slice(&line[base..]);
                u64::from_le_bytes(w)
            }
        };
        let mut mask = events(word);
        while mask != 0 {
            let i = base + (mask.trailing_zeros() / 8) as usize;
            mask &= mask - 1;
            if line[i] == b'"' {
                match state {
                    State::Open => {
                        state = State::Quoted;
                        value_start = i + 1;
                    }
                    State::Quoted => {
                        if field != 0 {
                            raw.set(field, &line[value_start..i]);
                            if raw.found == F_ALL {
                                return raw;
                            }
                        }
                        state = State::Key;
                        segment = i + 1;
                    }
                    // A stray quote outside a value, or one inside a bare value: data.
                    State::Key | State::Bare => {}
                }
                continue;
            }
            // `=`
            match state {
                State::Quoted | State::Open => continue,
                State::Key | State::Bare => {}
            }
            let floor = if state == State::Bare {
                value_start
            } else {
                segment
            };
            let here = key_at(line, floor, i);
            if state == State::Bare && field != 0 {
                let key_start = if here != 0 {
                    i - field_name(here).len()
                } else {
                    let mut k = i;
                    while k > floor && !is_blank(line[k - 1]) {
                        k -= 1;
                    }
                    k
                };
                raw.set(field, trim(&line[value_start..key_start]));
                if raw.found == F_ALL {
                    return raw;
                }
            }
            // The first occurrence of a key wins.
            field = here & !raw.found;
            if line.get(i + 1) == Some(&b'"') {
                state = State::Open;
            } else {
                state = State::Bare;
                value_start = i + 1;
            }
        }
        base += 8;
    }
    match state {
        State::Bare if field != 0 => raw.set(field, trim(&line[value_start..])),
        State::Open | State::Quoted => raw.unterminated = field,
        _ => {}
    }
    raw
}

fn present(value: Option<&[u8]>) -> Option<&[u8]> {
    value.filter(|v| !v.is_empty() && !eq_const(v, EMPTY))
}

/// Parses one line (without its line terminator).
pub fn parse_line(line: &[u8]) -> Result<SlaLine<'_>, Malformed> {
    parse_line_hinted(line, &mut Hints::default())
}

/// [`parse_line`] for one of many lines of a log, in order: `hints` carries what one line
/// teaches about the next (the result never depends on it, only the speed).
pub fn parse_line_hinted<'a>(line: &'a [u8], hints: &mut Hints) -> Result<SlaLine<'a>, Malformed> {
    let raw = match scan_platform_layout(line, hints) {
        Some(raw) => raw,
        None => scan(line),
    };
    let required = |field: u8| {
        raw.get(field).ok_or(if raw.unterminated == field {
            Malformed::Unterminated(field_name(field))
        } else {
            Malformed::Missing(field_name(field))
        })
    };
    let log_point = required(F_LOG_POINT)?;
    if present(Some(log_point)).is_none() {
        return Err(Malformed::EmptyLogPoint);
    }
    let duration = required(F_DURATION)?;
    let duration_us = match raw.duration_us {
        Some(us) => us,
        None => parse_duration_us(duration).map_err(Malformed::Duration)?,
    };
    let result = required(F_RESULT)?;
    if result.is_empty() {
        return Err(Malformed::Missing("Result"));
    }
    Ok(SlaLine {
        log_point,
        uniq_id: present(raw.get(F_UNIQ)),
        duration_us,
        message_id: present(raw.get(F_MESSAGE)),
        ok: result.len() == 2 && result.eq_ignore_ascii_case(b"OK"),
        soap_operation: present(raw.get(F_SOAP)),
    })
}

/// Parses `767 microseconds`, `1.5 ms`, `2s`… into whole microseconds (fractions of a microsecond
/// are rounded to the nearest).
pub fn parse_duration_us(value: &[u8]) -> Result<u64, DurationError> {
    let value = trim(value);
    // Fast path for the platform's own form, `767 microseconds`.
    let digits = value.iter().take_while(|b| b.is_ascii_digit()).count();
    if (1..=15).contains(&digits) && eq_const(&value[digits..], b" microseconds") {
        return Ok(value[..digits]
            .iter()
            .fold(0, |n, d| n * 10 + u64::from(d - b'0')));
    }
    let digits_end = value
        .iter()
        .position(|b| !b.is_ascii_digit() && *b != b'.')
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(digits_end);
    let unit = trim(unit);
    let unit_ns: u128 = match unit.len() {
        0 => return Err(DurationError::NoUnit),
        12 if eq_const(unit, b"microseconds") => 1_000,
        2 if eq_const(unit, b"us") => 1_000,
        2 if eq_const(unit, b"ms") => 1_000_000,
        1 if eq_const(unit, b"s") => 1_000_000_000,
        12 if eq_const(unit, b"milliseconds") => 1_000_000,
        7 if eq_const(unit, b"seconds") => 1_000_000_000,
        _ => match unit {
            b"microsecond" | b"\xc2\xb5s" | b"micros" => 1_000,
            b"millisecond" | b"millis" => 1_000_000,
            b"second" | b"sec" | b"secs" => 1_000_000_000,
            b"ns" | b"nanoseconds" => 1,
            _ => return Err(DurationError::UnknownUnit),
        },
    };
    let (int_part, frac_part) = match memchr(b'.', number) {
        Some(dot) => (&number[..dot], &number[dot + 1..]),
        None => (number, &number[number.len()..]),
    };
    if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains(&b'.') {
        return Err(DurationError::NoNumber);
    }
    // Integer part in ns; more than 20 digits is out of range for any unit.
    if int_part.len() > 20 {
        return Err(DurationError::OutOfRange);
    }
    let mut ns: u128 = 0;
    for &d in int_part {
        ns = ns * 10 + u128::from(d - b'0');
    }
    ns *= unit_ns;
    // Fraction: only the digits that can matter at ns resolution (the unit is at most 1e9 ns).
    let mut scale = unit_ns;
    for &d in frac_part.iter().take(10) {
        scale /= 10;
        ns += u128::from(d - b'0') * scale;
    }
    let us = (ns + 500) / 1_000;
    if us > u128::from(MAX_DURATION_US) {
        return Err(DurationError::OutOfRange);
    }
    Ok(us as u64)
}

/// Grouping period for `--by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Period {
    /// One group per clock hour of the line's timestamp.
    Hour,
    /// One group per calendar day of the line's timestamp.
    Day,
}

impl Period {
    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
        }
    }
}

fn two_digits(b: &[u8]) -> Option<u32> {
    match b {
        [a @ b'0'..=b'9', c @ b'0'..=b'9'] => Some(u32::from(a - b'0') * 10 + u32::from(c - b'0')),
        _ => None,
    }
}

/// The period of a line from its leading `YYYY-MM-DD HH` (log4j's default date layout; the
/// separator may also be `T`), as `YYYYMMDDHH` for hours and `YYYYMMDD` for days. That is the
/// time the line was written, i.e. when the call ended.
pub fn period_key(line: &[u8], by: Period) -> Option<u32> {
    let head = line.get(..13)?;
    let year = two_digits(&head[0..2])? * 100 + two_digits(&head[2..4])?;
    let month = two_digits(&head[5..7])?;
    let day = two_digits(&head[8..10])?;
    let hour = two_digits(&head[11..13])?;
    if head[4] != b'-'
        || head[7] != b'-'
        || !matches!(head[10], b' ' | b'T')
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
    {
        return None;
    }
    let date = year * 10_000 + month * 100 + day;
    match by {
        // `YYYYMMDDHH` fits a u32 up to 4294-12-31 23h; a later year is no log line of ours
        // (found by the `sla_line` fuzz target): the line has no period.
        Period::Hour => date.checked_mul(100).and_then(|d| d.checked_add(hour)),
        Period::Day => Some(date),
    }
}

#[cfg(test)]
mod period_key_regression {
    use super::*;

    /// Fuzz finding `fuzz/regressions/sla_line/period-key-overflow-year-6017`.
    #[test]
    fn far_future_years_have_no_hour_key_instead_of_overflowing() {
        assert_eq!(period_key(b"6017-06-26T02", Period::Hour), None);
        assert_eq!(period_key(b"6017-06-26T02", Period::Day), Some(60_170_626));
        assert_eq!(
            period_key(b"4294-12-31 23", Period::Hour),
            Some(4_294_123_123)
        );
    }
}

/// Renders a key made by [`period_key`]: `2017-06-26 08:00` or `2017-06-26`.
pub fn period_label(key: u32, by: Period) -> String {
    match by {
        Period::Hour => {
            let date = key / 100;
            format!(
                "{:04}-{:02}-{:02} {:02}:00",
                date / 10_000,
                date / 100 % 100,
                date % 100,
                key % 100
            )
        }
        Period::Day => format!(
            "{:04}-{:02}-{:02}",
            key / 10_000,
            key / 100 % 100,
            key % 100
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DB_LINE: &str = r#"2017-06-26 08:22:05,751 [default task-4] INFO  dk.sdsd.nsp.slalogdata - LogPoint="DB_Operation" LogPointUniqId="lookupPersonName" StartTime="2017-06-26 08:22:05.750" EndTime="2017-06-26 08:22:05.750" Duration="767 microseconds" MessageId="AAABXOMQcV1mt6jYItbXz1NPU0k=" RequestSize=0 ReplySize=0 Result=OK ClientIP="<empty>" SOAPOperation="<empty>" SOAPEndpoint="<empty>" SOAPAction="<empty>" TargetSOAPOperation="<empty>" TargetSOAPEndpoint="<empty>" GenericCallParms(0)= {  }"#;
    const SERVICE_LINE: &str = r#"2017-06-26 08:22:05,997 [default task-4] INFO  dk.sdsd.nsp.slalogdata - LogPoint="minlog2.GetLogStatementsForCPRPerson" LogPointUniqId="minlog2.GetLogStatementsForCPRPerson" StartTime="2017-06-26 08:22:04.657" EndTime="2017-06-26 08:22:05.997" Duration="1340017 microseconds" MessageId="AAABXOMQcV1mt6jYItbXz1NPU0k=" RequestSize=0 ReplySize=0 Result=OK ClientIP="127.0.0.1" SOAPOperation="GetLogStatementsForCPRPerson" SOAPEndpoint="http://localhost:8080/minlog2-lookup/LookupService" SOAPAction="GetLogStatementsForCPRPerson" TargetSOAPOperation="<empty>" TargetSOAPEndpoint="<empty>" GenericCallParms(0)= { }"#;

    #[test]
    fn seed_db_line() {
        let l = parse_line(DB_LINE.as_bytes()).unwrap();
        assert_eq!(l.log_point, b"DB_Operation");
        assert_eq!(l.uniq_id, Some(&b"lookupPersonName"[..]));
        assert_eq!(l.duration_us, 767);
        assert_eq!(l.message_id, Some(&b"AAABXOMQcV1mt6jYItbXz1NPU0k="[..]));
        assert!(l.ok);
        assert_eq!(l.soap_operation, None);
    }

    #[test]
    fn seed_service_line() {
        let l = parse_line(SERVICE_LINE.as_bytes()).unwrap();
        assert_eq!(l.log_point, b"minlog2.GetLogStatementsForCPRPerson");
        assert_eq!(l.duration_us, 1_340_017);
        assert_eq!(l.message_id, Some(&b"AAABXOMQcV1mt6jYItbXz1NPU0k="[..]));
        assert!(l.ok);
        assert_eq!(l.soap_operation, Some(&b"GetLogStatementsForCPRPerson"[..]));
        assert_eq!(
            period_key(SERVICE_LINE.as_bytes(), Period::Hour),
            Some(2_017_062_608)
        );
        assert_eq!(
            period_key(SERVICE_LINE.as_bytes(), Period::Day),
            Some(20_170_626)
        );
    }

    #[test]
    fn bare_values_with_spaces_and_error_results() {
        let line = br#"LogPoint=svc.Op Duration="2 ms" Result=Connection refused by peer MessageId=<empty> SOAPOperation="Op""#;
        let l = parse_line(line).unwrap();
        assert_eq!(l.log_point, b"svc.Op");
        assert_eq!(l.duration_us, 2_000);
        assert!(!l.ok);
        assert_eq!(l.message_id, None);
        assert_eq!(l.soap_operation, Some(&b"Op"[..]));
        // A bare value at the end of the line runs to the end (trailing blanks trimmed).
        let l = parse_line(b"LogPoint=x Duration=\"1 s\" Result=ERROR timeout  ").unwrap();
        assert!(!l.ok);
        assert_eq!(l.duration_us, 1_000_000);
    }

    #[test]
    fn quoted_values_may_hold_equals_signs_and_spaces() {
        let line = br#"LogPoint="a b" SOAPEndpoint="http://h/x?a=b&c=d" Duration="5 us" Result=ok"#;
        let l = parse_line(line).unwrap();
        assert_eq!(l.log_point, b"a b");
        assert_eq!(l.duration_us, 5);
        assert!(l.ok);
    }

    #[test]
    fn malformed_lines_say_why() {
        assert_eq!(parse_line(b""), Err(Malformed::Missing("LogPoint")));
        assert_eq!(
            parse_line(b"just some text"),
            Err(Malformed::Missing("LogPoint"))
        );
        assert_eq!(
            parse_line(br#"LogPoint="x" Result=OK"#),
            Err(Malformed::Missing("Duration"))
        );
        assert_eq!(
            parse_line(br#"LogPoint="<empty>" Duration="1 us" Result=OK"#),
            Err(Malformed::EmptyLogPoint)
        );
        assert_eq!(
            parse_line(br#"LogPoint="x" Duration="12" Result=OK"#),
            Err(Malformed::Duration(DurationError::NoUnit))
        );
        assert_eq!(
            parse_line(br#"LogPoint="x" Duration="12 parsecs" Result=OK"#),
            Err(Malformed::Duration(DurationError::UnknownUnit))
        );
        assert_eq!(
            parse_line(br#"LogPoint="x" Duration="1 us""#),
            Err(Malformed::Missing("Result"))
        );
    }

    #[test]
    fn truncated_lines() {
        // Cut at every byte: never a panic; cut before Result/Duration is complete → malformed.
        for cut in 0..SERVICE_LINE.len() {
            let line = &SERVICE_LINE.as_bytes()[..cut];
            let result = parse_line(line);
            let has_result = SERVICE_LINE[..cut].contains("Result=O");
            if !has_result {
                assert!(result.is_err(), "cut at {cut}: {result:?}");
            }
        }
        let cut = &DB_LINE[..DB_LINE.find("767 micro").unwrap() + 9];
        assert_eq!(
            parse_line(cut.as_bytes()),
            Err(Malformed::Unterminated("Duration"))
        );
    }

    #[test]
    fn huge_line_and_binary_garbage() {
        let mut huge = String::from(r#"LogPoint="big" Note=""#);
        huge.push_str(&"x".repeat(1 << 20));
        huge.push_str(r#"" Duration="3 ms" Result=OK"#);
        let l = parse_line(huge.as_bytes()).unwrap();
        assert_eq!(l.duration_us, 3_000);

        // A deterministic pseudo-random byte soup, rich in the bytes the scanner looks at.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let alphabet = b"=\" \tLogPoint=Duration=\"1 us\"Result=OK\xff\x00\n";
        for len in 0..400 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    alphabet[(state % alphabet.len() as u64) as usize]
                })
                .collect();
            let _ = parse_line(&bytes);
            let _ = period_key(&bytes, Period::Hour);
        }
    }

    /// Each wanted key with its value, and the wanted key whose quote was cut off.
    type Fields = (Vec<(String, Option<Vec<u8>>)>, Option<String>);

    /// The plain definition of the key/value grammar, one byte at a time: what `scan` must
    /// agree with.
    fn reference_fields(line: &[u8]) -> Fields {
        let keys = [
            "LogPoint",
            "LogPointUniqId",
            "Duration",
            "MessageId",
            "Result",
            "SOAPOperation",
        ];
        let mut found: Vec<(String, Option<Vec<u8>>)> =
            keys.iter().map(|k| (k.to_string(), None)).collect();
        let mut unterminated = None;
        let mut pos = 0;
        let mut bare: Option<(usize, usize)> = None; // (key index, value start)
        while let Some(rel) = line[pos..].iter().position(|&b| b == b'=') {
            let eq = pos + rel;
            let key_start = line[pos..eq]
                .iter()
                .rposition(|&b| b == b' ' || b == b'\t')
                .map_or(pos, |i| pos + i + 1);
            if let Some((k, start)) = bare.take() {
                found[k].1 = Some(trim(&line[start..key_start]).to_vec());
            }
            let key = &line[key_start..eq];
            let k = keys
                .iter()
                .position(|name| name.as_bytes() == key)
                .filter(|&k| found[k].1.is_none());
            if line.get(eq + 1) == Some(&b'"') {
                match line[eq + 2..].iter().position(|&b| b == b'"') {
                    Some(len) => {
                        if let Some(k) = k {
                            found[k].1 = Some(line[eq + 2..eq + 2 + len].to_vec());
                        }
                        pos = eq + 2 + len + 1;
                    }
                    None => {
                        unterminated = k.map(|k| keys[k].to_string());
                        return (found, unterminated);
                    }
                }
            } else {
                if let Some(k) = k {
                    bare = Some((k, eq + 1));
                }
                pos = eq + 1;
            }
        }
        if let Some((k, start)) = bare {
            found[k].1 = Some(trim(&line[start..]).to_vec());
        }
        (found, unterminated)
    }

    fn fast_fields(line: &[u8]) -> Fields {
        fast_fields_hinted(line, &mut Hints::default())
    }

    fn fast_fields_hinted(line: &[u8], hints: &mut Hints) -> Fields {
        let raw = scan_platform_layout(line, hints).unwrap_or_else(|| scan(line));
        let fields = [F_LOG_POINT, F_UNIQ, F_DURATION, F_MESSAGE, F_RESULT, F_SOAP];
        let found = fields
            .iter()
            .map(|&f| (field_name(f).to_string(), raw.get(f).map(<[u8]>::to_vec)))
            .collect();
        let unterminated =
            (raw.unterminated != 0).then(|| field_name(raw.unterminated).to_string());
        (found, unterminated)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn scanner_agrees_with_the_plain_definition(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "LogPoint", "LogPointUniqId", "Duration", "MessageId", "Result", "SOAPOperation",
                "TargetSOAPOperation", "XLogPoint", "Id", "=", "\"", " ", "\t", "a", "OK", "12 ms",
                "<empty>", "x=y", "GenericCallParms(0)= {", "}", "\"\"", "MessageId=", "Result=",
            ]), 0..40)
        ) {
            let line = parts.concat();
            let complete = reference_fields(line.as_bytes());
            let fast = fast_fields(line.as_bytes());
            // The fast scan stops once all six keys are found; before that it must agree exactly.
            if fast.0.iter().all(|(_, v)| v.is_some()) {
                proptest::prop_assert_eq!(&fast.0, &complete.0, "line {:?}", line);
            } else {
                proptest::prop_assert_eq!(&fast, &complete, "line {:?}", line);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        /// Lines in (or near) the platform layout, where the fast path applies.
        #[test]
        fn platform_layout_fast_path_agrees(
            // Mostly in the layout (so that the fast path runs), sometimes just off it.
            prefix in proptest::prop_oneof![3 => "([a-z\\[\\]\"-]{0,8} )?", 1 => "[a-z =\"]{0,8}"],
            quoted_values in proptest::collection::vec(
                proptest::prop_oneof![
                    3 => "[a-zA-Z0-9 =.:<>/\t]{0,10}",
                    1 => "[a-zA-Z0-9 =.:\"]{0,10}",
                    // The lengths the fast path guesses, with and without a quote inside.
                    1 => "[a-z\"]{23}",
                    1 => "[a-z\"]{28}",
                    1 => "[a-z]{23}|[a-z]{28}",
                ],
                8,
            ),
            bare_values in proptest::collection::vec(
                proptest::prop_oneof![3 => "[a-zA-Z0-9]{0,3}", 1 => "[a-zA-Z0-9 \t=\"]{0,5}"],
                3,
            ),
            tail in "[a-zA-Z =\"]{0,12}",
            // The message-id length learned from a line before, and whether this line's id
            // has that length (with a quote inside, sometimes).
            (hint, id) in proptest::strategy::Strategy::prop_flat_map(0usize..40, |n| (
                proptest::strategy::Just(n),
                proptest::option::of(proptest::collection::vec(
                    proptest::prop_oneof![9 => proptest::strategy::Just('a'), 1 => proptest::strategy::Just('"')],
                    n,
                )),
            )),
        ) {
            let mut quoted_values = quoted_values;
            if let Some(id) = id {
                quoted_values[5] = id.into_iter().collect();
            }
            let q = &quoted_values;
            let b = &bare_values;
            let line = format!(
                "{prefix}LogPoint=\"{}\" LogPointUniqId=\"{}\" StartTime=\"{}\" EndTime=\"{}\" Duration=\"{}\" MessageId=\"{}\" RequestSize={} ReplySize={} Result={} ClientIP=\"{}\" SOAPOperation=\"{}\"{tail}",
                q[0], q[1], q[2], q[3], q[4], q[5], b[0], b[1], b[2], q[6], q[7]
            );
            let line = line.as_bytes();
            let complete = reference_fields(line);
            let mut hints = Hints { message_id_len: hint };
            let fast = fast_fields_hinted(line, &mut hints);
            if fast.0.iter().all(|(_, v)| v.is_some()) {
                proptest::prop_assert_eq!(&fast.0, &complete.0);
            } else {
                proptest::prop_assert_eq!(&fast, &complete);
            }
        }
    }

    #[test]
    fn guessed_lengths_are_checked() {
        let line = b"0123456789012345678901\"x\"";
        assert_eq!(quoted_usually(line, 0, 23), quoted(line, 0));
        let line = b"01234567890123456789012\"";
        assert_eq!(quoted_usually(line, 0, 23), Some((&line[..23], 24)));
        let line = b"0123456789012345678901234\"";
        assert_eq!(quoted_usually(line, 0, 23), quoted(line, 0));
        assert_eq!(quoted_usually(b"short\"", 0, 23), Some((&b"short"[..], 6)));
        assert_eq!(quoted_usually(b"no quote at all", 0, 23), None);
        // Other lengths (as learned from a line before): right, wrong or too short to guess.
        for (line, len) in [
            (&b"0123456789012345678901\"x\""[..], 23),
            (b"0123456789012345678901\"x\"", 22),
            (b"0123456789012345678901\"x\"", 5),
            (b"0123\"x\"", 4),
            (b"0123456789\"x\"", 0),
            (b"no quote at all", 9),
        ] {
            assert_eq!(quoted_usually(line, 0, len), quoted(line, 0), "{len}");
        }
        assert_eq!(
            quoted_usually(b"0123456789012345678901\"x\"", 0, 22),
            Some((&b"0123456789012345678901"[..], 23))
        );
    }

    #[test]
    fn microseconds_in_place_agree_with_the_duration_parser() {
        for value in [
            "0",
            "7",
            "767",
            "5031",
            "166596",
            "1340017",
            "0000767",
            "12345678",
            "123456789",
            "",
            "x",
            "76x",
            "-1",
            "1.5",
            "767 ms",
            "767  microseconds",
            "767 microsecond",
            "767 microseconds ",
            "767 Microseconds",
            "9/9",
            ":9",
            "7\"",
        ] {
            let line = format!("{value} microseconds\" tail");
            let line = line.as_bytes();
            let fast = microseconds(line, 0);
            let slow =
                quoted(line, 0).and_then(|(v, end)| Some((end - 1, parse_duration_us(v).ok()?)));
            match fast {
                Some(f) => assert_eq!(Some(f), slow, "{value:?}"),
                // Not read in place: then the general path reads it.
                None => assert!(
                    !(1..=7).contains(&value.len()) || !value.bytes().all(|b| b.is_ascii_digit()),
                    "{value:?} should be read in place"
                ),
            }
        }
        // Every digit in every position; the line ending right after the window.
        for n in 0..10_000_000u64 {
            if n % 7_919 != 0 && n >= 100_000 {
                continue;
            }
            let line = format!("{n} microseconds\"");
            assert_eq!(
                microseconds(line.as_bytes(), 0),
                Some((line.len() - 1, n)),
                "{n}"
            );
        }
        assert_eq!(microseconds(b"1234567", 0), None);
    }

    #[test]
    fn a_log_teaches_the_length_of_its_message_ids() {
        // The generator's ids are 22 bytes long; the first line is read with the platform's 28.
        let line = DB_LINE.replace("AAABXOMQcV1mt6jYItbXz1NPU0k=", "AAAB000000000000NPU0k=");
        let mut hints = Hints::default();
        for _ in 0..2 {
            let raw = scan_platform_layout(line.as_bytes(), &mut hints).unwrap();
            assert_eq!(raw.get(F_MESSAGE), Some(&b"AAAB000000000000NPU0k="[..]));
            assert_eq!(hints, Hints { message_id_len: 22 });
        }
    }

    #[test]
    fn seed_lines_take_the_fast_path() {
        for line in [DB_LINE, SERVICE_LINE] {
            assert!(scan_platform_layout(line.as_bytes(), &mut Hints::default()).is_some());
        }
    }

    #[test]
    fn seed_lines_agree_with_the_plain_definition() {
        for line in [DB_LINE, SERVICE_LINE] {
            assert_eq!(
                fast_fields(line.as_bytes()),
                reference_fields(line.as_bytes())
            );
        }
    }

    #[test]
    fn durations_and_units() {
        let cases: &[(&str, u64)] = &[
            ("767 microseconds", 767),
            ("767 us", 767),
            ("767µs", 767),
            ("12 milliseconds", 12_000),
            ("12ms", 12_000),
            ("1.5 ms", 1_500),
            ("2 s", 2_000_000),
            ("2.25 seconds", 2_250_000),
            ("0.0004 ms", 0),
            ("0.0006 ms", 1),
            (".5s", 500_000),
            ("1500 ns", 2),
        ];
        for (text, us) in cases {
            assert_eq!(parse_duration_us(text.as_bytes()), Ok(*us), "{text}");
        }
        assert_eq!(parse_duration_us(b"us"), Err(DurationError::NoNumber));
        assert_eq!(parse_duration_us(b"1.2.3 s"), Err(DurationError::NoNumber));
        assert_eq!(
            parse_duration_us(b"99999999999999999999999 s"),
            Err(DurationError::OutOfRange)
        );
        assert_eq!(
            parse_duration_us(b"9999999999999 s"),
            Err(DurationError::OutOfRange)
        );
    }

    #[test]
    fn periods() {
        assert_eq!(
            period_key(b"2017-06-26T23:59:59", Period::Hour),
            Some(2_017_062_623)
        );
        assert_eq!(period_key(b"2017-13-26 08", Period::Day), None);
        assert_eq!(period_key(b"2017-06-26 24", Period::Hour), None);
        assert_eq!(period_key(b"[main] 2017-06-26 08", Period::Hour), None);
        assert_eq!(
            period_label(2_017_062_608, Period::Hour),
            "2017-06-26 08:00"
        );
        assert_eq!(period_label(20_170_626, Period::Day), "2017-06-26");
    }
}
