//! The expression language of the `expression` step: SQL's row-wise expressions, as polars' SQL and most
//! databases write them. Parsing only; types are checked against the data in `super::check`.

use serde::{Deserialize, Serialize};

/// A parsed expression. Column names are as written (SQL identifiers keep their case here: mlpipe's
/// columns are case-sensitive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    Number(f64),
    Text(String),
    Null,
    Bool(bool),
    Column(String),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
    Like {
        expr: Box<Expr>,
        pattern: String,
        negated: bool,
        case_insensitive: bool,
    },
    In {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    Case {
        branches: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    Call(Func, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Concat,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    And,
    Or,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Concat => "||",
            BinOp::Eq => "=",
            BinOp::NotEq => "<>",
            BinOp::Lt => "<",
            BinOp::LtEq => "<=",
            BinOp::Gt => ">",
            BinOp::GtEq => ">=",
            BinOp::And => "AND",
            BinOp::Or => "OR",
        }
    }

    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::NotEq | BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq
        )
    }
}

/// The row-wise functions. Names are matched without regard to case, as in SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Func {
    Abs,
    Sqrt,
    Exp,
    Ln,
    Log10,
    Power,
    Floor,
    Ceil,
    Least,
    Greatest,
    Coalesce,
    Lower,
    Upper,
    Length,
    /// `DATE_DIFF('day', start, end)`: end − start in the unit (days, hours, minutes, seconds, weeks).
    DateDiff,
}

impl Func {
    pub const ALL: [(&'static str, Func); 15] = [
        ("abs", Func::Abs),
        ("sqrt", Func::Sqrt),
        ("exp", Func::Exp),
        ("ln", Func::Ln),
        ("log10", Func::Log10),
        ("power", Func::Power),
        ("floor", Func::Floor),
        ("ceil", Func::Ceil),
        ("least", Func::Least),
        ("greatest", Func::Greatest),
        ("coalesce", Func::Coalesce),
        ("lower", Func::Lower),
        ("upper", Func::Upper),
        ("length", Func::Length),
        ("date_diff", Func::DateDiff),
    ];

    pub fn name(self) -> &'static str {
        Func::ALL.iter().find(|(_, f)| *f == self).map_or("?", |(n, _)| n)
    }

    /// How many arguments it takes: at least, at most.
    pub fn arity(self) -> (usize, usize) {
        match self {
            Func::Power => (2, 2),
            Func::Least | Func::Greatest | Func::Coalesce => (1, usize::MAX),
            Func::DateDiff => (3, 3),
            _ => (1, 1),
        }
    }
}

/// Functions that look at more than one row: refused, since fitted on train they would be computed on
/// test rows at apply time (and on a single row when serving).
const AGGREGATES: [&str; 24] = [
    "avg",
    "mean",
    "sum",
    "count",
    "min",
    "max",
    "median",
    "stddev",
    "stddev_samp",
    "stddev_pop",
    "std",
    "variance",
    "var_samp",
    "var_pop",
    "rank",
    "dense_rank",
    "row_number",
    "percent_rank",
    "cume_dist",
    "ntile",
    "lag",
    "lead",
    "first_value",
    "last_value",
];

/// A parse error: what is wrong, and the byte offset in the expression where it was noticed.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub message: String,
    pub at: usize,
    pub hint: Option<String>,
}

fn fail<T>(message: impl Into<String>, at: usize) -> Result<T, SyntaxError> {
    Err(SyntaxError {
        message: message.into(),
        at,
        hint: None,
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    /// A bare word (keyword or identifier).
    Word(String),
    /// A `"quoted"` identifier: always a column, never a keyword.
    Quoted(String),
    Sym(&'static str),
}

fn lex(text: &str) -> Result<Vec<(Tok, usize)>, SyntaxError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
                let mut j = i + 1;
                if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
                    j += 1;
                }
                if j < bytes.len() && bytes[j].is_ascii_digit() {
                    i = j;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            // A name that starts with digits (`1stFlrSF`, as data sets have them) is a column.
            if i < bytes.len() && (bytes[i].is_ascii_alphabetic() || bytes[i] == b'_') {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] >= 0x80) {
                    i += 1;
                }
                out.push((Tok::Word(text[start..i].to_string()), start));
                continue;
            }
            let s = &text[start..i];
            match s.parse::<f64>() {
                Ok(x) if x.is_finite() => out.push((Tok::Num(x), start)),
                _ => return fail(format!("\"{s}\" is not a number"), start),
            }
            continue;
        }
        if c == b'\'' || c == b'"' {
            // '' inside a string and "" inside a quoted name stand for the quote itself.
            let mut value = String::new();
            i += 1;
            loop {
                let Some(pos) = text[i..].find(c as char) else {
                    let what = if c == b'\'' { "text" } else { "quoted name" };
                    return fail(format!("the {what} opened here is not closed"), start);
                };
                value.push_str(&text[i..i + pos]);
                i += pos + 1;
                if bytes.get(i) == Some(&c) {
                    value.push(c as char);
                    i += 1;
                } else {
                    break;
                }
            }
            out.push((
                if c == b'\'' {
                    Tok::Str(value)
                } else {
                    Tok::Quoted(value)
                },
                start,
            ));
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] >= 0x80) {
                i += 1;
            }
            out.push((Tok::Word(text[start..i].to_string()), start));
            continue;
        }
        let two = text.get(i..i + 2).unwrap_or("");
        let sym = match two {
            "<=" => Some("<="),
            ">=" => Some(">="),
            "<>" | "!=" => Some("<>"),
            "||" => Some("||"),
            "==" => Some("="),
            _ => None,
        };
        if let Some(s) = sym {
            out.push((Tok::Sym(s), start));
            i += 2;
            continue;
        }
        let one = match c {
            b'+' => "+",
            b'-' => "-",
            b'*' => "*",
            b'/' => "/",
            b'%' => "%",
            b'(' => "(",
            b')' => ")",
            b',' => ",",
            b'<' => "<",
            b'>' => ">",
            b'=' => "=",
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                return fail(format!("unexpected character '{ch}'"), start);
            }
        };
        out.push((Tok::Sym(one), start));
        i += 1;
    }
    Ok(out)
}

/// One `expression AS name` feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    pub expr: Expr,
    pub name: String,
}

/// How deep an expression may nest (parentheses, operators, arguments): far beyond what a person
/// writes, and well inside the stack of the threads that parse, check and compute it.
pub const MAX_DEPTH: usize = 100;

/// Parses `expr AS name`.
pub fn parse_feature(text: &str) -> Result<Feature, SyntaxError> {
    let toks = lex(text)?;
    let mut p = Parser {
        toks: &toks,
        pos: 0,
        end: text.len(),
        depth: 0,
    };
    let expr = p.expr()?;
    if !p.keyword("as") {
        return match p.peek() {
            Some(_) => fail("expected AS or an operator here", p.at()),
            None => Err(SyntaxError {
                message: "the feature has no name".into(),
                at: p.at(),
                hint: Some("end it with AS new_column_name".into()),
            }),
        };
    }
    let name = match p.next() {
        Some(Tok::Word(w) | Tok::Quoted(w)) => w.clone(),
        _ => return fail("expected the new column's name after AS", p.at_prev()),
    };
    if p.peek().is_some() {
        return fail("unexpected text after the name", p.at());
    }
    if depth(&expr) > MAX_DEPTH {
        return Err(SyntaxError {
            message: format!("the expression nests more than {MAX_DEPTH} levels deep"),
            at: 0,
            hint: Some("split it over several features or steps (a long sum nests one level per term)".into()),
        });
    }
    Ok(Feature { expr, name })
}

struct Parser<'t> {
    toks: &'t [(Tok, usize)],
    pos: usize,
    end: usize,
    /// Nesting of `expr` calls (parentheses, NOT, unary minus, arguments), bounded so that no input
    /// overflows the parser's stack.
    depth: usize,
}

/// How deep an expression tree is.
fn depth(e: &Expr) -> usize {
    let children: Vec<&Expr> = match e {
        Expr::Number(_) | Expr::Text(_) | Expr::Null | Expr::Bool(_) | Expr::Column(_) => Vec::new(),
        Expr::Neg(x) | Expr::Not(x) | Expr::IsNull { expr: x, .. } | Expr::Like { expr: x, .. } => vec![x],
        Expr::Binary(_, a, b) => vec![a, b],
        Expr::In { expr, list, .. } => std::iter::once(&**expr).chain(list).collect(),
        Expr::Between { expr, low, high, .. } => vec![expr, low, high],
        Expr::Case { branches, otherwise } => branches
            .iter()
            .flat_map(|(c, v)| [c, v])
            .chain(otherwise.as_deref())
            .collect(),
        Expr::Call(_, args) => args.iter().collect(),
    };
    1 + children.into_iter().map(depth).max().unwrap_or(0)
}

const KEYWORDS: [&str; 19] = [
    "and", "or", "not", "as", "case", "when", "then", "else", "end", "is", "null", "like", "ilike", "in", "between",
    "true", "false", "over", "distinct",
];

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(_, at)| *at)
    }

    fn at_prev(&self) -> usize {
        self.toks
            .get(self.pos.saturating_sub(1))
            .map_or(self.end, |(_, at)| *at)
    }

    fn next(&mut self) -> Option<&Tok> {
        let t = self.toks.get(self.pos).map(|(t, _)| t);
        self.pos += 1;
        t
    }

    fn is_keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k))
    }

    fn keyword(&mut self, k: &str) -> bool {
        let yes = self.is_keyword(k);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn sym(&mut self, s: &str) -> bool {
        let yes = matches!(self.peek(), Some(Tok::Sym(x)) if *x == s);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn expect_sym(&mut self, s: &str, what: &str) -> Result<(), SyntaxError> {
        if self.sym(s) {
            Ok(())
        } else {
            fail(format!("expected '{s}' {what}"), self.at())
        }
    }

    fn expr(&mut self) -> Result<Expr, SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return fail(
                format!("the expression nests more than {MAX_DEPTH} levels deep"),
                self.at(),
            );
        }
        let e = self.or();
        self.depth -= 1;
        e
    }

    fn or(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            let right = self.and()?;
            left = Expr::Binary(BinOp::Or, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.not()?;
        while self.keyword("and") {
            let right = self.not()?;
            left = Expr::Binary(BinOp::And, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, SyntaxError> {
        if self.keyword("not") {
            return Ok(Expr::Not(Box::new(self.nested(Parser::not)?)));
        }
        self.comparison()
    }

    /// A recursive step that counts towards the depth limit.
    fn nested(&mut self, f: fn(&mut Self) -> Result<Expr, SyntaxError>) -> Result<Expr, SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return fail(
                format!("the expression nests more than {MAX_DEPTH} levels deep"),
                self.at(),
            );
        }
        let e = f(self);
        self.depth -= 1;
        e
    }

    fn comparison(&mut self) -> Result<Expr, SyntaxError> {
        let left = self.concat()?;
        let op = match self.peek() {
            Some(Tok::Sym("=")) => Some(BinOp::Eq),
            Some(Tok::Sym("<>")) => Some(BinOp::NotEq),
            Some(Tok::Sym("<")) => Some(BinOp::Lt),
            Some(Tok::Sym("<=")) => Some(BinOp::LtEq),
            Some(Tok::Sym(">")) => Some(BinOp::Gt),
            Some(Tok::Sym(">=")) => Some(BinOp::GtEq),
            _ => None,
        };
        if let Some(op) = op {
            self.pos += 1;
            let right = self.concat()?;
            return Ok(Expr::Binary(op, Box::new(left), Box::new(right)));
        }
        if self.keyword("is") {
            let negated = self.keyword("not");
            if !self.keyword("null") {
                return fail("expected NULL after IS", self.at());
            }
            return Ok(Expr::IsNull {
                expr: Box::new(left),
                negated,
            });
        }
        let negated = self.keyword("not");
        if self.is_keyword("like") || self.is_keyword("ilike") {
            let case_insensitive = self.is_keyword("ilike");
            self.pos += 1;
            let Some(Tok::Str(pattern)) = self.next().cloned() else {
                return fail("LIKE takes a pattern in single quotes ('North%')", self.at_prev());
            };
            return Ok(Expr::Like {
                expr: Box::new(left),
                pattern,
                negated,
                case_insensitive,
            });
        }
        if self.keyword("in") {
            self.expect_sym("(", "after IN")?;
            let mut list = Vec::new();
            loop {
                let at = self.at();
                let item = self.unary()?;
                if !matches!(item, Expr::Number(_) | Expr::Text(_)) {
                    return fail("IN lists numbers or texts", at);
                }
                list.push(item);
                if !self.sym(",") {
                    break;
                }
            }
            self.expect_sym(")", "to close the IN list")?;
            return Ok(Expr::In {
                expr: Box::new(left),
                list,
                negated,
            });
        }
        if self.keyword("between") {
            let low = self.concat()?;
            if !self.keyword("and") {
                return fail("expected AND in BETWEEN … AND …", self.at());
            }
            let high = self.concat()?;
            return Ok(Expr::Between {
                expr: Box::new(left),
                low: Box::new(low),
                high: Box::new(high),
                negated,
            });
        }
        if negated {
            return fail("expected LIKE, IN or BETWEEN after NOT", self.at());
        }
        Ok(left)
    }

    fn concat(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.additive()?;
        while self.sym("||") {
            let right = self.additive()?;
            left = Expr::Binary(BinOp::Concat, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn additive(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.multiplicative()?;
        loop {
            let op = if self.sym("+") {
                BinOp::Add
            } else if self.sym("-") {
                BinOp::Sub
            } else {
                return Ok(left);
            };
            let right = self.multiplicative()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.unary()?;
        loop {
            let op = if self.sym("*") {
                BinOp::Mul
            } else if self.sym("/") {
                BinOp::Div
            } else if self.sym("%") {
                BinOp::Rem
            } else {
                return Ok(left);
            };
            let right = self.unary()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        if self.sym("-") {
            return Ok(match self.nested(Parser::unary)? {
                Expr::Number(x) => Expr::Number(-x),
                e => Expr::Neg(Box::new(e)),
            });
        }
        if self.sym("+") {
            return self.nested(Parser::unary);
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, SyntaxError> {
        let at = self.at();
        let Some(tok) = self.next().cloned() else {
            return fail("the expression ends too early", at);
        };
        match tok {
            Tok::Num(x) => Ok(Expr::Number(x)),
            Tok::Str(s) => Ok(Expr::Text(s)),
            Tok::Quoted(name) => Ok(Expr::Column(name)),
            Tok::Sym("(") => {
                let e = self.expr()?;
                self.expect_sym(")", "to close the parenthesis")?;
                Ok(e)
            }
            Tok::Sym(s) => fail(format!("unexpected '{s}'"), at),
            Tok::Word(w) => self.word(&w, at),
        }
    }

    fn word(&mut self, w: &str, at: usize) -> Result<Expr, SyntaxError> {
        let lower = w.to_ascii_lowercase();
        match lower.as_str() {
            "null" => return Ok(Expr::Null),
            "true" => return Ok(Expr::Bool(true)),
            "false" => return Ok(Expr::Bool(false)),
            "case" => return self.case(),
            _ => {}
        }
        if self.sym("(") {
            if AGGREGATES.contains(&lower.as_str()) {
                return Err(SyntaxError {
                    message: format!("{} looks at other rows; an expression step computes each row from that row alone", w.to_uppercase()),
                    at,
                    hint: Some(match lower.as_str() {
                        "min" | "max" => "for the smaller or larger of a row's values write LEAST(a, b) or GREATEST(a, b); statistics learned on train come from fitted steps (standard_scaler, mean_target, …)".into(),
                        _ => "statistics learned on train come from fitted steps (standard_scaler, mean_target, count_frequency, discretise, …), which apply the train values to test".into(),
                    }),
                });
            }
            let Some(&(_, func)) = Func::ALL.iter().find(|(n, _)| *n == lower) else {
                let names: Vec<&str> = Func::ALL.iter().map(|(n, _)| *n).collect();
                return Err(SyntaxError {
                    message: format!("unknown function {w}"),
                    at,
                    hint: Some(
                        crate::error::did_you_mean(&lower, names.iter().copied())
                            .unwrap_or_else(|| format!("the functions are: {}", names.join(", "))),
                    ),
                });
            };
            let mut args = Vec::new();
            if !self.sym(")") {
                loop {
                    args.push(self.expr()?);
                    if !self.sym(",") {
                        break;
                    }
                }
                self.expect_sym(")", &format!("to close {}(", w.to_uppercase()))?;
            }
            if self.is_keyword("over") {
                return fail("window functions (OVER) look at other rows", self.at());
            }
            let (low, high) = func.arity();
            if args.len() < low || args.len() > high {
                let want = if low == high {
                    format!("{low}")
                } else {
                    format!("at least {low}")
                };
                return fail(
                    format!("{} takes {want} argument(s), not {}", w.to_uppercase(), args.len()),
                    at,
                );
            }
            return Ok(Expr::Call(func, args));
        }
        if KEYWORDS.contains(&lower.as_str()) {
            return fail(format!("unexpected {}", w.to_uppercase()), at);
        }
        Ok(Expr::Column(w.to_string()))
    }

    fn case(&mut self) -> Result<Expr, SyntaxError> {
        let mut branches = Vec::new();
        while self.keyword("when") {
            let cond = self.expr()?;
            if !self.keyword("then") {
                return fail("expected THEN", self.at());
            }
            let value = self.expr()?;
            branches.push((cond, value));
        }
        if branches.is_empty() {
            return fail("CASE needs at least one WHEN … THEN …", self.at());
        }
        let otherwise = if self.keyword("else") {
            Some(Box::new(self.expr()?))
        } else {
            None
        };
        if !self.keyword("end") {
            return fail("expected END to close CASE", self.at());
        }
        Ok(Expr::Case { branches, otherwise })
    }
}

/// Every column an expression reads, in order of first mention.
pub fn columns_of(e: &Expr, out: &mut Vec<String>) {
    let mut add = |name: &str| {
        if !out.iter().any(|c| c == name) {
            out.push(name.to_string());
        }
    };
    match e {
        Expr::Column(c) => add(c),
        Expr::Number(_) | Expr::Text(_) | Expr::Null | Expr::Bool(_) => {}
        Expr::Neg(x) | Expr::Not(x) | Expr::IsNull { expr: x, .. } | Expr::Like { expr: x, .. } => columns_of(x, out),
        Expr::Binary(_, a, b) => {
            columns_of(a, out);
            columns_of(b, out);
        }
        Expr::In { expr, list, .. } => {
            columns_of(expr, out);
            for x in list {
                columns_of(x, out);
            }
        }
        Expr::Between { expr, low, high, .. } => {
            columns_of(expr, out);
            columns_of(low, out);
            columns_of(high, out);
        }
        Expr::Case { branches, otherwise } => {
            for (c, v) in branches {
                columns_of(c, out);
                columns_of(v, out);
            }
            if let Some(o) = otherwise {
                columns_of(o, out);
            }
        }
        Expr::Call(_, args) => {
            for a in args {
                columns_of(a, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::unnecessary_box_returns)]
    fn col(n: &str) -> Box<Expr> {
        Box::new(Expr::Column(n.into()))
    }

    #[test]
    fn precedence_is_sqls() {
        let f = parse_feature("a + b * 2 > 3 AND NOT c IS NULL AS x").unwrap();
        assert_eq!(f.name, "x");
        let sum = Expr::Binary(
            BinOp::Add,
            col("a"),
            Box::new(Expr::Binary(BinOp::Mul, col("b"), Box::new(Expr::Number(2.0)))),
        );
        let cmp = Expr::Binary(BinOp::Gt, Box::new(sum), Box::new(Expr::Number(3.0)));
        let not = Expr::Not(Box::new(Expr::IsNull {
            expr: col("c"),
            negated: false,
        }));
        assert_eq!(f.expr, Expr::Binary(BinOp::And, Box::new(cmp), Box::new(not)));
        let f = parse_feature("1stFlrSF + 2ndFlrSF * 1e3 AS total").unwrap();
        let product = Expr::Binary(BinOp::Mul, col("2ndFlrSF"), Box::new(Expr::Number(1000.0)));
        assert_eq!(f.expr, Expr::Binary(BinOp::Add, col("1stFlrSF"), Box::new(product)));
        let f = parse_feature("\"Lot Area\" - -1 as \"new name\"").unwrap();
        assert_eq!(f.name, "new name");
        assert_eq!(
            f.expr,
            Expr::Binary(BinOp::Sub, col("Lot Area"), Box::new(Expr::Number(-1.0)))
        );
    }

    #[test]
    fn aggregates_and_windows_are_refused_by_name() {
        let e = parse_feature("LotArea / AVG(LotArea) AS r").unwrap_err();
        assert!(e.message.starts_with("AVG looks at other rows"), "{e:?}");
        assert_eq!(e.at, 10);
        let e = parse_feature("abs(x) over (partition by y) AS r").unwrap_err();
        assert!(e.message.contains("OVER"), "{e:?}");
        let e = parse_feature("max(a, b) AS r").unwrap_err();
        assert!(e.hint.unwrap().contains("GREATEST"));
    }

    #[test]
    fn malformed_text_is_pointed_at() {
        for (text, at) in [
            ("a + AS x", 4),
            ("(a AS x", 3),
            ("a / 'x AS y", 4),
            ("a AS", 4),
            ("a b AS c", 2),
            ("sqr(a) AS b", 0),
        ] {
            let e = parse_feature(text).unwrap_err();
            assert_eq!(e.at, at, "{text}: {e:?}");
        }
        assert_eq!(parse_feature("a").unwrap_err().message, "the feature has no name");
        // Deep nesting is a syntax error, not a stack overflow; a long sum is depth too.
        for text in [
            format!("{}a{} AS x", "(".repeat(5000), ")".repeat(5000)),
            format!("{}a AS x", "-".repeat(5000)),
            format!("{}a AS x", "NOT ".repeat(5000)),
            format!("{} AS x", vec!["a"; 5000].join(" + ")),
        ] {
            let e = parse_feature(&text).unwrap_err();
            assert!(e.message.contains("nests more than"), "{e:?}");
        }
        assert!(parse_feature(&format!("{} AS x", vec!["a"; 99].join(" + "))).is_ok());
    }
}
