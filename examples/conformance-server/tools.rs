//! The content, logging, progress, sampling and elicitation tools.

use std::time::Duration;

use mcp_server::ask::AskError;
use mcp_server::prelude::*;
use mcp_server::tool::{ToolCall, ToolRoute};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};

/// A 1×1 red PNG.
pub(crate) const PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A tiny WAV file.
const WAV: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

pub(crate) fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

/// Returns a simple text response.
#[tool]
async fn test_simple_text() -> &'static str {
    "This is a simple text response for testing."
}

/// Returns an image.
#[tool]
async fn test_image_content() -> ContentBlock {
    ContentBlock::image(PNG, "image/png")
}

/// Returns audio.
#[tool]
async fn test_audio_content() -> ContentBlock {
    ContentBlock::audio(WAV, "audio/wav")
}

/// Returns an embedded resource.
#[tool]
async fn test_embedded_resource() -> ContentBlock {
    ContentBlock::resource(ResourceContents::text(
        "test://embedded-resource",
        "text/plain",
        "This is an embedded resource content.",
    ))
}

/// Returns text, an image and a resource.
#[tool]
async fn test_multiple_content_types() -> Vec<ContentBlock> {
    vec![
        ContentBlock::text("Multiple content types test:"),
        ContentBlock::image(PNG, "image/png"),
        ContentBlock::resource(ResourceContents::text(
            "test://mixed-content-resource",
            "application/json",
            r#"{"test":"data","value":123}"#,
        )),
    ]
}

/// Sends three log messages while running.
#[tool]
async fn test_tool_with_logging(ctx: Context) -> &'static str {
    ctx.info("Tool execution started").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    ctx.info("Tool processing data").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    ctx.info("Tool execution completed").await;
    "Tool with logging executed successfully"
}

/// Logs one message and returns; modern clients only see it when they ask for a log level.
#[tool]
async fn test_logging_tool(ctx: Context) -> &'static str {
    ctx.info("test_logging_tool ran").await;
    "Logging tool executed"
}

/// Reports progress 0, 50 and 100 of 100.
#[tool]
async fn test_tool_with_progress(ctx: Context) -> String {
    for step in [0.0, 50.0, 100.0] {
        ctx.progress(step, Some(100.0), Some(&format!("Completed step {step} of 100"))).await;
        if step < 100.0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    ctx.progress_token()
        .map(|t| match t {
            RequestId::String(s) => s.clone(),
            RequestId::Number(n) => n.to_string(),
        })
        .unwrap_or_default()
}

/// Always fails.
#[tool]
async fn test_error_handling() -> Result<String, String> {
    Err("This tool intentionally returns an error for testing".into())
}

/// Asks the client's model to answer a prompt.
#[tool]
async fn test_sampling(
    ctx: Context,
    #[arg(description = "The prompt to send")] prompt: String,
) -> Result<String, AskError> {
    let params = CreateMessageRequestParams::new(vec![SamplingMessage::user_text(prompt)], 100);
    let result = ctx.sample("sampling", params).await?;
    Ok(format!("LLM response: {}", result.text().unwrap_or_default()))
}

/// Needs sampling; fails with -32021 when the client did not declare it.
#[tool]
async fn test_missing_capability(ctx: Context) -> Result<String, AskError> {
    let params = CreateMessageRequestParams::new(vec![SamplingMessage::user_text("Hello")], 10);
    let result = ctx.sample("sampling", params).await?;
    Ok(format!("LLM response: {}", result.text().unwrap_or_default()))
}

fn describe(result: &ElicitResult) -> String {
    let action = serde_json::to_value(result.action).unwrap_or(Value::Null);
    let content = result.content.clone().map(Value::Object).unwrap_or(Value::Null);
    format!("action={}, content={}", action.as_str().unwrap_or_default(), content)
}

/// Asks the user for information.
#[tool]
async fn test_elicitation(
    ctx: Context,
    #[arg(description = "What to ask")] message: String,
) -> Result<String, AskError> {
    let schema = json!({
        "type": "object",
        "properties": {"response": {"type": "string", "description": "User's response"}},
        "required": ["response"],
    });
    let answer = ctx.elicit("response", ElicitRequestParams::form(message, object(schema))).await?;
    Ok(format!("User response: {}", describe(&answer)))
}

/// Elicits with default values of every primitive type (SEP-1034).
#[tool]
async fn test_elicitation_sep1034_defaults(ctx: Context) -> Result<String, AskError> {
    let schema = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "default": "John Doe"},
            "age": {"type": "integer", "default": 30},
            "score": {"type": "number", "default": 95.5},
            "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
            "verified": {"type": "boolean", "default": true},
        },
        "required": [],
    });
    let params = ElicitRequestParams::form("Please review your information", object(schema));
    let answer = ctx.elicit("defaults", params).await?;
    Ok(format!("Elicitation completed: {}", describe(&answer)))
}

/// Elicits with every enum variant (SEP-1330).
#[tool]
async fn test_elicitation_sep1330_enums(ctx: Context) -> Result<String, AskError> {
    let schema = json!({
        "type": "object",
        "properties": {
            "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
            "titledSingle": {"type": "string", "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ]},
            "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"]},
            "untitledMulti": {"type": "array", "minItems": 1, "maxItems": 3,
                "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
            "titledMulti": {"type": "array", "minItems": 1, "maxItems": 3, "items": {"anyOf": [
                {"const": "value1", "title": "First Choice"},
                {"const": "value2", "title": "Second Choice"},
                {"const": "value3", "title": "Third Choice"},
            ]}},
        },
        "required": [],
    });
    let answer = ctx.elicit("enums", ElicitRequestParams::form("Pick some options", object(schema))).await?;
    Ok(format!("Elicitation completed: {}", describe(&answer)))
}

/// Elicits through the request's own stream; modern clients get an input-required result.
#[tool]
async fn test_streaming_elicitation(ctx: Context) -> Result<String, AskError> {
    let schema = json!({"type": "object", "properties": {"answer": {"type": "string"}}});
    let answer = ctx.elicit("answer", ElicitRequestParams::form("Anything to add?", object(schema))).await?;
    Ok(format!("Streaming elicitation: {}", describe(&answer)))
}

/// Current weather for a city.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Weather {
    city: String,
    temperature_c: f64,
    conditions: String,
}

/// Returns structured weather data.
#[tool]
async fn test_structured_content(#[arg(description = "City name")] city: String) -> Weather {
    Weather { city, temperature_c: 21.5, conditions: "sunny".into() }
}

/// Echoes a value that modern clients also send in the `Mcp-Param-Custom` header.
#[tool]
async fn test_header_param(
    #[arg(header = "Custom", description = "Mirrored in a header")] value: String,
) -> String {
    format!("Header parameter: {value}")
}

/// Answers after a pause, so a client can reconnect mid-call.
#[tool]
async fn test_reconnection() -> &'static str {
    tokio::time::sleep(Duration::from_millis(100)).await;
    "Reconnection test completed"
}

const DYNAMIC_TOOL: &str = "test_dynamic_tool";
const DYNAMIC_PROMPT: &str = "test_dynamic_prompt";

/// Adds or removes a tool, so clients get `tools/list_changed`.
#[tool]
async fn test_trigger_tool_change(ctx: Context) -> &'static str {
    let server = ctx.server();
    if !server.remove_tool(DYNAMIC_TOOL) {
        server.add_tool(dynamic_tool());
    }
    "Tool list changed"
}

/// Adds or removes a prompt, so clients get `prompts/list_changed`.
#[tool]
async fn test_trigger_prompt_change(ctx: Context) -> &'static str {
    let server = ctx.server();
    if !server.remove_prompt(DYNAMIC_PROMPT) {
        server.add_prompt(
            mcp_server::prompt::PromptRoute::new(DYNAMIC_PROMPT, |_c| async { "A dynamic prompt." })
                .description("A prompt added at run time."),
        );
    }
    "Prompt list changed"
}

fn dynamic_tool() -> ToolRoute {
    ToolRoute::new(DYNAMIC_TOOL, object(json!({"type": "object"})), |_call: ToolCall| async {
        "Dynamic tool response"
    })
    .description("A tool added at run time.")
}

/// A tool whose input schema uses JSON Schema 2020-12 keywords, kept verbatim.
fn json_schema_2020_12_tool() -> ToolRoute {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {"address": {"type": "object", "$anchor": "addressDef",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"},
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": false,
    });
    ToolRoute::new("json_schema_2020_12_tool", object(schema), |call: ToolCall| async move {
        format!("JSON Schema 2020-12 tool called with: {}", Value::Object(call.arguments().clone()))
    })
    .description("Tool with a JSON Schema 2020-12 input schema.")
}

pub(crate) fn register(server: Server) -> Server {
    // test_simple_text comes first: clients probe the first listed tool with no arguments.
    server
        .tool(test_simple_text)
        .tool(test_image_content)
        .tool(test_audio_content)
        .tool(test_embedded_resource)
        .tool(test_multiple_content_types)
        .tool(test_tool_with_logging)
        .tool(test_logging_tool)
        .tool(test_tool_with_progress)
        .tool(test_error_handling)
        .tool(test_sampling)
        .tool(test_missing_capability)
        .tool(test_elicitation)
        .tool(test_elicitation_sep1034_defaults)
        .tool(test_elicitation_sep1330_enums)
        .tool(test_streaming_elicitation)
        .tool(test_structured_content)
        .tool(test_header_param)
        .tool(test_reconnection)
        .tool(test_trigger_tool_change)
        .tool(test_trigger_prompt_change)
        .tool(json_schema_2020_12_tool())
}
