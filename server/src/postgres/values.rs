//! PostgreSQL values decoded on our side, for the statements PostgreSQL cannot turn into JSON for us
//! (`EXPLAIN`, `SHOW`: they cannot be wrapped in `to_json`). Those return text, JSON or a handful of
//! scalar types; anything else is shown as a marker naming its type rather than guessed at.

use serde_json::Value;
use tokio_postgres::{Row, types::Type};

/// Every column of `row` as JSON, in column order.
pub fn row_values(row: &Row) -> Vec<Value> {
    (0..row.len()).map(|index| cell(row, index)).collect()
}

fn cell(row: &Row, index: usize) -> Value {
    let column_type = row.columns()[index].type_();
    let decoded = match *column_type {
        Type::BOOL => row.try_get::<_, Option<bool>>(index).map(|v| v.map(Value::from)),
        Type::INT2 => row.try_get::<_, Option<i16>>(index).map(|v| v.map(Value::from)),
        Type::INT4 => row.try_get::<_, Option<i32>>(index).map(|v| v.map(Value::from)),
        Type::INT8 => row.try_get::<_, Option<i64>>(index).map(|v| v.map(Value::from)),
        Type::OID => row.try_get::<_, Option<u32>>(index).map(|v| v.map(Value::from)),
        Type::FLOAT4 => row.try_get::<_, Option<f32>>(index).map(|v| v.map(Value::from)),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(index).map(|v| v.map(Value::from)),
        Type::JSON | Type::JSONB => row.try_get::<_, Option<Value>>(index),
        _ => row.try_get::<_, Option<String>>(index).map(|v| v.map(Value::from)),
    };
    match decoded {
        Ok(Some(value)) => value,
        Ok(None) => Value::Null,
        Err(_) => Value::String(format!("<{} value not shown>", column_type.name())),
    }
}
