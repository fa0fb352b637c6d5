//! Number formats of a spec's metrics: `.2f` (fixed, 2 decimals) or `.3e` (scientific).

/// How a metric's numbers are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NumberFormat {
    pub precision: usize,
    pub scientific: bool,
}

impl NumberFormat {
    /// Parses `.Nf` or `.Ne`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let err =
            || format!("expected `.Nf` (fixed) or `.Ne` (scientific) with N digits, e.g. \".2f\"; found {text:?}");
        let rest = text.strip_prefix('.').ok_or_else(err)?;
        let (digits, kind) = rest.split_at(rest.len().saturating_sub(1));
        let precision: usize = digits.parse().map_err(|_| err())?;
        if precision > 12 {
            return Err(err());
        }
        match kind {
            "f" => Ok(Self { precision, scientific: false }),
            "e" => Ok(Self { precision, scientific: true }),
            _ => Err(err()),
        }
    }

    /// `14.21`.
    pub fn format(&self, v: f64) -> String {
        if self.scientific {
            format!("{v:.*e}", self.precision)
        } else {
            format!("{v:.*}", self.precision)
        }
    }

    /// `+0.35` / `-0.35`: a difference, always signed.
    pub fn signed(&self, v: f64) -> String {
        let s = self.format(v);
        if s.starts_with('-') {
            s
        } else {
            format!("+{s}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::NumberFormat;

    #[test]
    fn formats() {
        let f = NumberFormat::parse(".2f").unwrap();
        assert_eq!(f.format(14.214), "14.21");
        assert_eq!(f.signed(0.35), "+0.35");
        assert_eq!(f.signed(-0.35), "-0.35");
        assert_eq!(NumberFormat::parse(".1e").unwrap().format(0.00123), "1.2e-3");
        assert!(NumberFormat::parse("2f").is_err());
        assert!(NumberFormat::parse(".xf").is_err());
        assert!(NumberFormat::parse(".2g").is_err());
    }
}
