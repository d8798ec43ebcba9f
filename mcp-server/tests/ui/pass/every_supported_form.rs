use mcp_server::tool::IntoToolRoute;
use mcp_server::{Context, Identity, Server, State, prompt, resource, router, tool};
use schemars::JsonSchema;
use serde::Serialize;

struct Greeting(&'static str);

#[derive(Serialize, JsonSchema)]
struct Weather {
    temperature_c: f64,
}

/// Current weather for a city.
#[tool(
    name = "get_weather",
    title = "Weather",
    annotations(read_only_hint = true, title = "x"),
    icons = ["https://example.com/i.png"],
    scopes = ["a:read"]
)]
async fn weather(
    #[arg(description = "City name", rename = "cityName")] city: String,
    units: Option<String>,
    context: Context,
    State(greeting): State<Greeting>,
    identity: Option<Identity>,
) -> Result<Weather, String> {
    let _ = (units, context.is_cancelled(), greeting.0, identity);
    if city.is_empty() { Err("no city".into()) } else { Ok(Weather { temperature_c: 21.5 }) }
}

/// Shouts the text back.
#[tool]
async fn shout(text: String) -> Result<String, String> {
    if text.is_empty() { Err("nothing to shout".into()) } else { Ok(text.to_uppercase()) }
}

/// Greets someone.
#[prompt]
async fn greet(name: String, mood: Option<String>) -> String {
    format!("Hello {name}, you seem {}", mood.as_deref().unwrap_or("fine"))
}

/// A fixed resource.
#[resource(uri = "test://fixed", mime_type = "text/plain")]
async fn fixed() -> &'static str {
    "fixed"
}

/// A templated resource.
#[resource(uri_template = "test://items/{id}", name = "item")]
async fn item(id: String) -> String {
    format!("item {id}")
}

#[derive(Clone, Default)]
struct Notes {
    prefix: String,
}

#[router]
impl Notes {
    /// Counts letters.
    #[tool]
    async fn count(&self, text: String) -> usize {
        self.prefix.len() + text.chars().count()
    }

    /// An associated function (no `&self`) works too.
    #[tool]
    async fn version() -> &'static str {
        "1.0.0"
    }

    /// Summarizes a note.
    #[prompt(name = "summarize")]
    async fn summary(&self, note: String) -> String {
        format!("{}Summarize: {note}", self.prefix)
    }

    /// A note by id.
    #[resource(uri_template = "notes://{id}")]
    async fn note(&self, id: String) -> String {
        format!("{}{id}", self.prefix)
    }

    /// Not a route: left untouched.
    fn helper(&self) -> usize {
        self.prefix.len()
    }
}

fn main() {
    let server = Server::new("ui", "1.0.0")
        .state(Greeting("hi"))
        .tool(weather)
        .tool(shout)
        .prompt(greet)
        .resource(fixed)
        .resource(item)
        .routes(Notes::default());

    assert_eq!(server.tool_names(), ["get_weather", "shout", "count", "version"]);
    assert_eq!(server.prompt_names(), ["greet", "summarize"]);
    assert_eq!(server.resource_uris(), ["test://fixed"]);
    // Templates are not listed by `resource_uris`; removing one proves it was registered.
    assert!(server.remove_resource("test://items/{id}"));
    assert!(server.remove_resource("notes://{id}"));

    let route = weather.into_tool_route();
    let definition = route.definition();
    assert_eq!(definition.title.as_deref(), Some("Weather"));
    assert!(definition.output_schema.is_some(), "structured output has a schema");
    let schema = serde_json::to_value(&definition.input_schema).unwrap();
    assert!(schema["properties"]["cityName"].is_object(), "renamed argument: {schema}");
    assert!(schema["properties"].get("context").is_none(), "extractors are not arguments: {schema}");
    assert_eq!(route.required_scopes(), ["a:read"]);
    assert!(shout.into_tool_route().definition().output_schema.is_none(), "text output has no schema");

    assert_eq!(Notes::default().helper(), 0);
}
