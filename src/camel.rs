//! JSON for people and JavaScript: every object key in camelCase (`avg_macs` → `avgMacs`), the
//! one naming convention of `inspect --json`, `infer --json` and the JavaScript API.

use serde_json::Value;

/// `value` with every object key, at any depth, in camelCase.
pub fn camel_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (camel(&k), camel_keys(v)))
                .collect(),
        ),
        Value::Array(list) => Value::Array(list.into_iter().map(camel_keys).collect()),
        other => other,
    }
}

/// `snake_case` → `snakeCase`.
fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_camel_case_keys_at_every_depth_and_leave_values_alone() {
        let v = serde_json::json!({
            "avg_macs": 1, "exitShares": [ { "max_rel_err": "keep_me" } ], "p": [0.5]
        });
        assert_eq!(
            camel_keys(v),
            serde_json::json!({
                "avgMacs": 1, "exitShares": [ { "maxRelErr": "keep_me" } ], "p": [0.5]
            })
        );
    }
}
