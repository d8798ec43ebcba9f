//! Tools and a prompt that need the client's input (SEP-2322 multi round-trip
//! requests in 2026-07-28; real server→client requests for legacy clients).

use mcp_server::ask::{AskError, InputBatch};
use mcp_server::prelude::*;
use serde_json::{Value, json};

use crate::tools::object;

fn ask_name() -> ElicitRequestParams {
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]});
    ElicitRequestParams::form("What is your name?", object(schema))
}

fn ask_ok() -> ElicitRequestParams {
    let schema = json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]});
    ElicitRequestParams::form("Please confirm", object(schema))
}

fn capital_question() -> CreateMessageRequestParams {
    CreateMessageRequestParams::new(vec![SamplingMessage::user_text("What is the capital of France?")], 100)
}

fn field<'a>(answer: &'a ElicitResult, key: &str) -> &'a Value {
    answer.content.as_ref().and_then(|c| c.get(key)).unwrap_or(&Value::Null)
}

/// Asks for the user's name.
#[tool]
async fn test_input_required_result_elicitation(ctx: Context) -> Result<String, AskError> {
    let answer = ctx.elicit("user_name", ask_name()).await?;
    Ok(format!("Hello, {}!", field(&answer, "name").as_str().unwrap_or("stranger")))
}

/// Asks the client's model a question.
#[tool]
async fn test_input_required_result_sampling(ctx: Context) -> Result<String, AskError> {
    let answer = ctx.sample("capital_question", capital_question()).await?;
    Ok(format!("The model said: {}", answer.text().unwrap_or_default()))
}

/// Asks for the client's roots.
#[tool]
async fn test_input_required_result_list_roots(ctx: Context) -> Result<String, AskError> {
    let roots = ctx.list_roots("client_roots").await?;
    Ok(format!("The client has {} root(s)", roots.roots.len()))
}

/// Asks for a confirmation carried across the round trip in request state.
#[tool]
async fn test_input_required_result_request_state(ctx: Context) -> Result<String, AskError> {
    let answer = ctx.elicit("confirm", ask_ok()).await?;
    Ok(format!("state-ok: confirmed={}", field(&answer, "ok")))
}

/// Asks three questions of three kinds in one round.
#[tool]
async fn test_input_required_result_multiple_inputs(ctx: Context) -> Result<String, AskError> {
    let batch = InputBatch::new()
        .elicit("user_name", ask_name())
        .sample(
            "greeting",
            CreateMessageRequestParams::new(vec![SamplingMessage::user_text("Say a greeting")], 50),
        )
        .roots("client_roots");
    let answers = ctx.ask(batch).await?;
    let name: ElicitResult = answers.parse("user_name")?;
    let greeting: CreateMessageResult = answers.parse("greeting")?;
    let roots: ListRootsResult = answers.parse("client_roots")?;
    Ok(format!(
        "name={}, greeting={}, roots={}",
        field(&name, "name"),
        greeting.text().unwrap_or_default(),
        roots.roots.len()
    ))
}

/// Asks two questions in two rounds.
#[tool]
async fn test_input_required_result_multi_round(ctx: Context) -> Result<String, AskError> {
    let name = ctx.elicit("step1", ask_name()).await?;
    let schema =
        json!({"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]});
    let color = ctx.elicit("step2", ElicitRequestParams::form("Favourite colour?", object(schema))).await?;
    Ok(format!("name={}, color={}", field(&name, "name"), field(&color, "color")))
}

/// Like the request-state tool; its state must not survive tampering.
#[tool]
async fn test_input_required_result_tampered_state(ctx: Context) -> Result<String, AskError> {
    let answer = ctx.elicit("confirm", ask_ok()).await?;
    Ok(format!("confirmed={}", field(&answer, "ok")))
}

/// Asks only what the client declared it can answer.
#[tool]
async fn test_input_required_result_capabilities(ctx: Context) -> Result<String, AskError> {
    let caps = ctx.client_capabilities();
    if caps.supports_elicitation_form() {
        let answer = ctx.elicit("user_name", ask_name()).await?;
        Ok(format!("elicited {}", field(&answer, "name")))
    } else if caps.supports_sampling() {
        let answer = ctx.sample("capital_question", capital_question()).await?;
        Ok(format!("sampled {}", answer.text().unwrap_or_default()))
    } else {
        Ok("the client can answer nothing; no input requested".into())
    }
}

/// A prompt that first asks the user for context.
#[prompt]
async fn test_input_required_result_prompt(ctx: Context) -> Result<Vec<PromptMessage>, McpError> {
    let schema =
        json!({"type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]});
    let answer =
        ctx.elicit("user_context", ElicitRequestParams::form("Any context?", object(schema))).await?;
    let context = field(&answer, "context").as_str().unwrap_or_default().to_owned();
    Ok(vec![PromptMessage::user_text(format!("Use this context: {context}"))])
}

pub(crate) fn register(server: Server) -> Server {
    server
        .tool(test_input_required_result_elicitation)
        .tool(test_input_required_result_sampling)
        .tool(test_input_required_result_list_roots)
        .tool(test_input_required_result_request_state)
        .tool(test_input_required_result_multiple_inputs)
        .tool(test_input_required_result_multi_round)
        .tool(test_input_required_result_tampered_state)
        .tool(test_input_required_result_capabilities)
        .prompt(test_input_required_result_prompt)
}
