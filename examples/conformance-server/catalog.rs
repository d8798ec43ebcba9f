//! The resources and prompts of the contract.

use mcp_server::prelude::*;

use crate::tools::PNG;

/// A static text resource.
#[resource(uri = "test://static-text", name = "static-text", mime_type = "text/plain")]
async fn static_text() -> &'static str {
    "This is the content of the static text resource."
}

/// A static binary resource (a PNG image).
#[resource(uri = "test://static-binary", name = "static-binary", mime_type = "image/png")]
async fn static_binary() -> ResourceContents {
    ResourceContents::blob("test://static-binary", "image/png", PNG)
}

/// A resource clients can subscribe to.
#[resource(uri = "test://watched-resource", name = "watched-resource", mime_type = "text/plain")]
async fn watched_resource() -> &'static str {
    "Watched resource content"
}

/// Data for an id.
#[resource(
    uri_template = "test://template/{id}/data",
    name = "template-data",
    mime_type = "application/json"
)]
async fn template_data(id: String) -> String {
    let id = serde_json::Value::String(id);
    format!(r#"{{"id":{id},"templateTest":true,"data":"Data for ID: {}"}}"#, id.as_str().unwrap_or_default())
}

/// A simple prompt without arguments.
#[prompt]
async fn test_simple_prompt() -> &'static str {
    "This is a simple prompt for testing."
}

/// A prompt with two required arguments.
#[prompt]
async fn test_prompt_with_arguments(
    #[arg(description = "First test argument")] arg1: String,
    #[arg(description = "Second test argument")] arg2: String,
) -> String {
    format!("Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")
}

/// A prompt embedding a resource.
#[prompt]
async fn test_prompt_with_embedded_resource(
    #[arg(rename = "resourceUri", description = "URI of the resource to embed")] resource_uri: String,
) -> Vec<PromptMessage> {
    let resource =
        ResourceContents::text(resource_uri, "text/plain", "Embedded resource content for testing.");
    vec![
        PromptMessage { role: Role::User, content: ContentBlock::resource(resource) },
        PromptMessage::user_text("Please process the embedded resource above."),
    ]
}

/// A prompt with an image.
#[prompt]
async fn test_prompt_with_image() -> Vec<PromptMessage> {
    vec![
        PromptMessage { role: Role::User, content: ContentBlock::image(PNG, "image/png") },
        PromptMessage::user_text("Please analyze the image above."),
    ]
}

pub(crate) fn register(server: Server) -> Server {
    server
        .resource(static_text)
        .resource(static_binary)
        .resource(watched_resource)
        .resource(template_data)
        .prompt(test_simple_prompt)
        .prompt(test_prompt_with_arguments)
        .prompt(test_prompt_with_embedded_resource)
        .prompt(test_prompt_with_image)
}
