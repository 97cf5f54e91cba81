//! `${NAME}` expansion in string values, so secrets stay out of the file.
//! `$${` writes a literal `${`. A variable that is not set is an error naming it.

/// Expands `${NAME}` in `s` using `lookup`. Returns the names that were not set as the error.
pub fn expand(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, Vec<String>> {
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut missing = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            match tail.find('}') {
                Some(end) => {
                    let name = &tail[..end];
                    match lookup(name) {
                        Some(v) => out.push_str(&v),
                        None => missing.push(name.to_string()),
                    }
                    rest = &tail[end + 1..];
                }
                None => {
                    // An unclosed `${` is kept literally rather than guessed at.
                    out.push_str("${");
                    rest = tail;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_and_escapes() {
        assert_eq!(expand("Bearer ${TOKEN}", &env).unwrap(), "Bearer s3cret");
        assert_eq!(expand("a $${TOKEN} b", &env).unwrap(), "a ${TOKEN} b");
        assert_eq!(expand("cost $5", &env).unwrap(), "cost $5");
        assert_eq!(
            expand("${NOPE}/${ALSO}", &env).unwrap_err(),
            vec!["NOPE", "ALSO"]
        );
        assert_eq!(expand("${unclosed", &env).unwrap(), "${unclosed");
    }
}
