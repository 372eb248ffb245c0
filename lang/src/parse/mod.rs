//! The DolphinDB script parser: source text to [`ast`] with the line and column of every node
//! and of every syntax error.

pub mod ast;
pub mod codec;
pub mod lexer;
mod parser;

pub use parser::{parse, parse_expr, NESTING_MAX};

/// A 1-based source position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// A syntax error, DolphinDB style, with its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Syntax Error: [line #{}, column #{}] {message}", pos.line, pos.col)]
pub struct ParseError {
    pub pos: Pos,
    pub message: String,
}
