//! One image's result as users read it: the CLI's `infer --json` and the JavaScript API's
//! `classify` both serialize this type (camelCase keys).

use serde::{Deserialize, Serialize};

use super::Decision;

/// What one evaluated exit said, with the class name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitClassification {
    /// Maximum softmax probability.
    pub confidence: f32,
    /// Name of the arg-max class.
    pub label: String,
    /// Index of the arg-max class.
    pub class_index: usize,
}

/// The decision for one image, with class names and the cost of running every stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Classification {
    /// Name of the predicted class.
    pub label: String,
    /// Index of the predicted class.
    pub class_index: usize,
    /// Its confidence.
    pub confidence: f32,
    /// The exit taken, numbered from 1.
    pub exit: usize,
    /// MACs spent.
    pub macs: u64,
    /// MACs of running every stage.
    pub full_macs: u64,
    /// The exits evaluated, in order (exit 1 .. `exit`).
    pub per_exit: Vec<ExitClassification>,
}

impl Classification {
    /// `decision` with class names from `label` and the full cost `full_macs`.
    pub fn new(decision: &Decision, label: impl Fn(usize) -> String, full_macs: u64) -> Self {
        Classification {
            label: label(decision.class_index),
            class_index: decision.class_index,
            confidence: decision.confidence,
            exit: decision.exit,
            macs: decision.macs,
            full_macs,
            per_exit: decision
                .per_exit
                .iter()
                .map(|e| ExitClassification {
                    confidence: e.confidence,
                    label: label(e.class_index),
                    class_index: e.class_index,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::ExitOutput;

    #[test]
    fn should_name_classes_and_use_camel_case_keys() {
        let d = Decision {
            class_index: 2,
            confidence: 0.75,
            exit: 2,
            macs: 300,
            per_exit: vec![
                ExitOutput {
                    confidence: 0.5,
                    class_index: 1,
                },
                ExitOutput {
                    confidence: 0.75,
                    class_index: 2,
                },
            ],
            logits: vec![0.0, 1.0, 2.0],
        };
        let names = ["a", "b", "c"];
        let c = Classification::new(&d, |i| names[i].to_string(), 900);
        assert_eq!((c.label.as_str(), c.per_exit[0].label.as_str()), ("c", "b"));
        let v = serde_json::to_value(&c).unwrap();
        for key in ["classIndex", "fullMacs", "perExit"] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
        assert_eq!(v["perExit"][1]["classIndex"], 2);
        let back: Classification = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
    }
}
