//! Tokens of DolphinDB script, each with its line and column (1-based).
//!
//! Literals recognised here: integers with type suffixes (`1h`, `1i`, `1l`, `1c`, `1f`),
//! doubles, strings `'..'` / `".."` with escapes, symbols `` `a `` and symbol vectors
//! `` `a`b`c ``, and every temporal literal: `2021.01.01` (DATE), `2021.01M` (MONTH), `09:30m`
//! (MINUTE), `09:30:00` (SECOND), `09:30:00.000` (TIME), `09:30:00.000000000` (NANOTIME),
//! `2023.01.08T09:30:00` (DATETIME), `...T09:30:00.000` (TIMESTAMP),
//! `...T09:30:00.000000000` (NANOTIMESTAMP).

use super::{ParseError, Pos};

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Int(i64, Option<char>),
    Double(f64, Option<char>),
    Str(String),
    Symbol(String),
    SymbolVec(Vec<String>),
    /// A temporal literal: its DolphinDB type id and value (days, months, ms, s, ns...).
    Temporal(u8, i64),
    /// A duration literal, `5m`: the count and its unit.
    Duration(i64, &'static str),
    Ident(String),
    Op(&'static str),
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub pos: Pos,
    /// Whether a newline separates this token from the previous one (a statement boundary).
    pub newline_before: bool,
}

/// Longest script accepted by the lexer.
pub const SCRIPT_BYTES_MAX: usize = 64 << 20;

const OPS: [&str; 34] = [
    "..", "<-", "<=", ">=", "==", "!=", "<>", "&&", "||", "<<", ">>", "**", "->", "+", "-", "*",
    "/", "\\", "%", "<", ">", "=", "!", "&", "|", "^", "$", ":", ",", ";", ".", "(", ")", "@",
];
const BRACKETS: [&str; 4] = ["[", "]", "{", "}"];

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

struct Lexer<'a> {
    src: &'a [u8],
    i: usize,
    line: u32,
    col: u32,
}

impl<'a> Lexer<'a> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }

    fn peek(&self, k: usize) -> u8 {
        *self.src.get(self.i + k).unwrap_or(&0)
    }

    fn bump(&mut self) -> u8 {
        let c = self.peek(0);
        self.i += 1;
        if c == b'\n' {
            self.line += 1;
            self.col = 1;
        } else if c & 0xC0 != 0x80 {
            self.col += 1;
        }
        c
    }

    fn err(&self, pos: Pos, msg: impl Into<String>) -> ParseError {
        ParseError {
            pos,
            message: msg.into(),
        }
    }

    fn digits(&mut self) -> String {
        let mut s = String::new();
        while self.peek(0).is_ascii_digit() {
            s.push(self.bump() as char);
        }
        s
    }

    /// After `hh:mm`, parse `[:ss[.fraction]]` or `m`; returns (type, value).
    fn clock(&mut self, start: Pos, h: i64) -> Result<(u8, i64), ParseError> {
        self.bump(); // ':'
        let mm = self.digits();
        let m: i64 = mm
            .parse()
            .map_err(|_| self.err(start, "malformed time literal"))?;
        if h > 23 || m > 59 {
            return Err(self.err(start, format!("time {h:02}:{m:02} is out of range")));
        }
        if self.peek(0) == b'm' && !self.peek(1).is_ascii_alphanumeric() {
            self.bump();
            return Ok((9, h * 60 + m)); // MINUTE
        }
        if self.peek(0) != b':' {
            return Ok((9, h * 60 + m));
        }
        self.bump();
        let ss = self.digits();
        let sec: i64 = ss
            .parse()
            .map_err(|_| self.err(start, "malformed time literal"))?;
        if sec > 59 {
            return Err(self.err(start, format!("second {sec} is out of range")));
        }
        let secs = h * 3600 + m * 60 + sec;
        if self.peek(0) == b'.' && self.peek(1).is_ascii_digit() {
            self.bump();
            let frac = self.digits();
            return match frac.len() {
                3 => Ok((8, secs * 1000 + frac.parse::<i64>().unwrap_or(0))), // TIME (ms)
                9 => Ok((13, secs * 1_000_000_000 + frac.parse::<i64>().unwrap_or(0))), // NANOTIME
                _ => Err(self.err(start, "a time fraction has 3 (ms) or 9 (ns) digits")),
            };
        }
        Ok((10, secs)) // SECOND
    }

    fn number(&mut self) -> Result<Tok, ParseError> {
        let start = self.pos();
        let int = self.digits();
        // hh:mm...
        let minute_suffix = self.peek(3) == b'm' && !self.peek(4).is_ascii_alphanumeric();
        if self.peek(0) == b':'
            && self.peek(1).is_ascii_digit()
            && int.len() == 2
            && self.peek(2).is_ascii_digit()
            && (self.peek(3) == b':' || minute_suffix)
        {
            // `09:30:00` and `09:30m` are times; `10:20` (no seconds, no `m`) is a pair.
            let (t, v) = self.clock(start, int.parse().unwrap_or(99))?;
            return Ok(Tok::Temporal(t, v));
        }
        // yyyy.mm.dd / yyyy.mmM
        if int.len() == 4
            && self.peek(0) == b'.'
            && self.peek(1).is_ascii_digit()
            && self.peek(2).is_ascii_digit()
            && (self.peek(3) == b'.' || self.peek(3) == b'M')
        {
            self.bump();
            let mon: i64 = self.digits().parse().unwrap_or(0);
            let year: i64 = int.parse().unwrap_or(0);
            if !(1..=12).contains(&mon) {
                return Err(self.err(start, format!("month {mon} is out of range")));
            }
            if self.peek(0) == b'M' {
                self.bump();
                return Ok(Tok::Temporal(7, year * 12 + mon - 1)); // MONTH: months since 0000.01
            }
            self.bump(); // '.'
            let day_s = self.digits();
            let day: i64 = day_s
                .parse()
                .map_err(|_| self.err(start, "malformed date literal"))?;
            let days_in = [
                31,
                if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) {
                    29
                } else {
                    28
                },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            if day < 1 || day > days_in[(mon - 1) as usize] {
                return Err(self.err(start, format!("{year}.{mon:02}.{day:02} is not a date")));
            }
            let days = days_from_civil(year, mon, day);
            if self.peek(0) == b'T' && self.peek(1).is_ascii_digit() {
                self.bump();
                let hh = self.digits();
                let tpos = self.pos();
                if self.peek(0) != b':' {
                    return Err(self.err(tpos, "expected hh:mm:ss after T"));
                }
                let (t, v) = self.clock(start, hh.parse().unwrap_or(99))?;
                return Ok(match t {
                    10 => Tok::Temporal(11, days * 86_400 + v),    // DATETIME
                    8 => Tok::Temporal(12, days * 86_400_000 + v), // TIMESTAMP
                    13 => Tok::Temporal(14, days * 86_400_000_000_000 + v), // NANOTIMESTAMP
                    _ => Tok::Temporal(11, days * 86_400 + v * 60), // minutes
                });
            }
            return Ok(Tok::Temporal(6, days)); // DATE
        }
        let mut text = int;
        let mut is_double = false;
        if self.peek(0) == b'.' && self.peek(1).is_ascii_digit() {
            self.bump();
            text.push('.');
            text.push_str(&self.digits());
            is_double = true;
        }
        if matches!(self.peek(0), b'e' | b'E')
            && (self.peek(1).is_ascii_digit()
                || (matches!(self.peek(1), b'+' | b'-') && self.peek(2).is_ascii_digit()))
        {
            text.push(self.bump() as char);
            if matches!(self.peek(0), b'+' | b'-') {
                text.push(self.bump() as char);
            }
            text.push_str(&self.digits());
            is_double = true;
        }
        let suffix = match self.peek(0) {
            c @ (b'h' | b'i' | b'l' | b'c' | b'f' | b'F')
                if !self.peek(1).is_ascii_alphanumeric() && self.peek(1) != b'_' =>
            {
                self.bump();
                Some(c.to_ascii_lowercase() as char)
            }
            _ => None,
        };
        if !is_double && suffix.is_none() {
            // A duration: an integer and a unit (`5m`, `100ms`, `1H`, `2w`, `1B`).
            for unit in crate::eval::DURATION_UNITS {
                let u = unit.as_bytes();
                let at = |k: usize| self.peek(k);
                if (0..u.len()).all(|k| at(k) == u[k])
                    && !at(u.len()).is_ascii_alphanumeric()
                    && at(u.len()) != b'_'
                {
                    for _ in 0..u.len() {
                        self.bump();
                    }
                    let v: i64 = text
                        .parse()
                        .map_err(|_| self.err(start, format!("integer {text} is out of range")))?;
                    return Ok(Tok::Duration(v, unit));
                }
            }
        }
        if self.peek(0).is_ascii_alphabetic() || self.peek(0) == b'_' {
            return Err(self.err(
                self.pos(),
                format!(
                    "unexpected '{}' after the number {text}",
                    self.peek(0) as char
                ),
            ));
        }
        if is_double || suffix == Some('f') {
            let v: f64 = text
                .parse()
                .map_err(|_| self.err(start, format!("malformed number {text}")))?;
            Ok(Tok::Double(v, suffix))
        } else {
            let v: i64 = text
                .parse()
                .map_err(|_| self.err(start, format!("integer {text} is out of range")))?;
            Ok(Tok::Int(v, suffix))
        }
    }

    fn string(&mut self, quote: u8) -> Result<Tok, ParseError> {
        let start = self.pos();
        self.bump();
        let mut out = Vec::new();
        loop {
            match self.peek(0) {
                0 if self.i >= self.src.len() => return Err(self.err(start, "unterminated string")),
                c if c == quote => {
                    self.bump();
                    break;
                }
                b'\\' => {
                    self.bump();
                    let e = self.bump();
                    out.push(match e {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        b'0' => 0,
                        other => other,
                    });
                }
                _ => out.push(self.bump()),
            }
        }
        String::from_utf8(out)
            .map(Tok::Str)
            .map_err(|_| self.err(start, "string is not UTF-8"))
    }

    fn symbols(&mut self) -> Tok {
        let mut syms = Vec::new();
        while self.peek(0) == b'`' {
            self.bump();
            let mut s = String::new();
            while self.peek(0).is_ascii_alphanumeric() || matches!(self.peek(0), b'_' | b'.') {
                if self.peek(0) == b'.' && !self.peek(1).is_ascii_alphanumeric() {
                    break;
                }
                s.push(self.bump() as char);
            }
            syms.push(s);
        }
        if syms.len() == 1 {
            Tok::Symbol(syms.pop().expect("one"))
        } else {
            Tok::SymbolVec(syms)
        }
    }
}

/// Splits `src` into tokens.
pub fn lex(src: &str) -> Result<Vec<Token>, ParseError> {
    if src.len() > SCRIPT_BYTES_MAX {
        return Err(ParseError {
            pos: Pos { line: 1, col: 1 },
            message: format!("script longer than {SCRIPT_BYTES_MAX} bytes"),
        });
    }
    let mut lx = Lexer {
        src: src.as_bytes(),
        i: 0,
        line: 1,
        col: 1,
    };
    let mut out = Vec::new();
    let mut newline = true;
    loop {
        // Whitespace and comments.
        loop {
            match lx.peek(0) {
                b' ' | b'\t' | b'\r' => {
                    lx.bump();
                }
                b'\n' => {
                    lx.bump();
                    newline = true;
                }
                b'/' if lx.peek(1) == b'/' => {
                    while lx.i < lx.src.len() && lx.peek(0) != b'\n' {
                        lx.bump();
                    }
                }
                b'/' if lx.peek(1) == b'*' => {
                    let start = lx.pos();
                    lx.bump();
                    lx.bump();
                    while !(lx.peek(0) == b'*' && lx.peek(1) == b'/') {
                        if lx.i >= lx.src.len() {
                            return Err(lx.err(start, "unterminated /* comment"));
                        }
                        if lx.bump() == b'\n' {
                            newline = true;
                        }
                    }
                    lx.bump();
                    lx.bump();
                }
                _ => break,
            }
        }
        let pos = lx.pos();
        if lx.i >= lx.src.len() {
            out.push(Token {
                tok: Tok::Eof,
                pos,
                newline_before: true,
            });
            return Ok(out);
        }
        let c = lx.peek(0);
        let tok = if c.is_ascii_digit() {
            lx.number()?
        } else if c == b'\'' || c == b'"' {
            lx.string(c)?
        } else if c == b'`' {
            lx.symbols()
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let mut s = String::new();
            while lx.peek(0).is_ascii_alphanumeric() || lx.peek(0) == b'_' {
                s.push(lx.bump() as char);
            }
            // Mutating functions end with `!` (append!, join!) — but not `!=`.
            if lx.peek(0) == b'!' && lx.peek(1) != b'=' {
                lx.bump();
                s.push('!');
            }
            Tok::Ident(s)
        } else if let Some(op) = OPS
            .iter()
            .chain(BRACKETS.iter())
            .find(|op| lx.src[lx.i..].starts_with(op.as_bytes()))
        {
            for _ in 0..op.len() {
                lx.bump();
            }
            Tok::Op(op)
        } else {
            let ch = src[lx.i..].chars().next().unwrap_or('?');
            return Err(lx.err(pos, format!("Cannot recognize the token {ch}")));
        };
        out.push(Token {
            tok,
            pos,
            newline_before: newline,
        });
        newline = false;
    }
}
