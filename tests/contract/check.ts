// Compiles (`tsc --noEmit`) only if every route serves design.md's models as the frontend reads
// them: each schema of the OpenAPI document (generated/api.d.ts, made by openapi-typescript from
// what the Rust code serves) must be assignable to the design.ts interface, so a field renamed,
// dropped, made optional or retyped, or a value outside a design union, is a compile error.
// The only allowance is `null` on the fields listed per model below; the README's "API
// differences from design.md" says why each can be absent.

import type { components, paths } from "./generated/api";
import type * as Design from "./design";

type Schemas = components["schemas"];

/** A design type as JSON.parse gives it: a Date arrives as its RFC 3339 string. */
type Json<T> = 0 extends 1 & T
  ? T
  : T extends Date
    ? string
    : T extends (infer U)[]
      ? Json<U>[]
      : T extends object
        ? { [K in keyof T]: Json<T[K]> }
        : T;

/** `T` whose fields `K` may also be null (and are still always present). */
type OrNull<T, K extends keyof T> = Omit<T, K> & { [P in K]: T[P] | null };

/** Compiles only if `Served` can stand where the frontend expects `Expected`. */
type Conforms<Expected, Served extends Expected> = Served;

type Method = "get" | "post" | "put" | "delete";

/** The operation, or a marker that fails every check when the path has no such method. */
type Operation<P extends keyof paths, M extends Method> = [NonNullable<paths[P][M]>] extends [never]
  ? { missing: `${M} ${P & string}` }
  : NonNullable<paths[P][M]>;

/** The JSON body of an operation's answer with `Status`, or a marker that fails every check. */
type Body<P extends keyof paths, M extends Method = "get", Status extends number = 200> =
  Operation<P, M> extends {
    responses: { [S in Status]: { content: { "application/json": infer B } } };
  }
    ? B
    : { missing: `${M} ${P & string} answers no JSON with ${Status}` };

/** One row of a list answer (`{data: [...], pagination}`). */
type Row<P extends keyof paths> = Body<P> extends { data: (infer R)[] } ? R : { missing: `${P & string} rows` };

// The models as served: design.md's, with null allowed where the README says why.
type User = OrNull<Json<Design.User>, "email" | "name">;
type Agent = Json<Design.Agent>;
type Call = OrNull<Json<Design.Call>, "phone_number" | "recording_url" | "completed_at">;
type Transcript = Json<Design.Transcript>;
type LeadAnalytics = OrNull<
  Json<Design.LeadAnalytics>,
  | "intent_level"
  | "intent_score"
  | "urgency_level"
  | "urgency_score"
  | "budget_constraint"
  | "budget_score"
  | "fit_alignment"
  | "fit_score"
  | "engagement_health"
  | "engagement_score"
  | "total_score"
  | "lead_status_tag"
>;
type Contact = Json<Design.Contact>;
type CreditTransaction = Json<Design.CreditTransaction>;
type ErrorResponse = Json<Design.ErrorResponse>;

/** Every place a design model is served. */
export type Models = [
  Conforms<User, Schemas["Profile"]>,
  Conforms<User, Body<"/auth/profile">>,
  Conforms<User, Body<"/auth/profile", "put">>,
  Conforms<User, Body<"/auth/register", "post", 201>["user"]>,
  Conforms<User, Body<"/auth/login", "post">["user"]>,
  Conforms<User, Row<"/admin/users">>,
  Conforms<User, Body<"/admin/users/{id}">>,

  Conforms<Agent, Schemas["Agent"]>,
  Conforms<Agent, Row<"/api/agents">>,
  Conforms<Agent, Body<"/api/agents", "post", 201>>,
  Conforms<Agent, Body<"/api/agents/{id}">>,
  Conforms<Agent, Body<"/api/agents/{id}", "put">>,
  Conforms<Agent, Row<"/agents">>,
  Conforms<Agent, Body<"/agents", "post", 201>>,
  Conforms<Agent, Body<"/agents/{id}">>,
  Conforms<Agent, Body<"/agents/{id}", "put">>,
  Conforms<Agent, Row<"/admin/agents">>,
  Conforms<Agent, Body<"/admin/agents/{id}">>,
  Conforms<Agent, Body<"/admin/agents/{id}", "put">>,
  Conforms<Agent, Body<"/admin/agents/{id}/deactivate", "post">>,
  Conforms<Agent, Body<"/admin/users/{id}">["agents"][number]>,

  Conforms<Call, Schemas["Call"]>,
  Conforms<Call, Row<"/api/calls">>,
  Conforms<Call, Body<"/api/calls/{id}">>,

  Conforms<Transcript, Schemas["Transcript"]>,
  Conforms<Transcript, Body<"/api/calls/{id}/transcript">>,

  Conforms<LeadAnalytics, Schemas["LeadAnalytics"]>,
  Conforms<LeadAnalytics, NonNullable<Body<"/api/calls/{id}">["lead_analytics"]>>,
  Conforms<LeadAnalytics, NonNullable<Body<"/api/leads/{id}">["latest_analytics"]>>,
  Conforms<LeadAnalytics, NonNullable<Row<"/api/leads">["latest_analytics"]>>,
  Conforms<LeadAnalytics, Row<"/analytics/leads">>,

  Conforms<Contact, Schemas["Contact"]>,
  Conforms<Contact, Row<"/api/contacts">>,
  Conforms<Contact, Body<"/api/contacts", "post", 201>>,
  Conforms<Contact, Body<"/api/contacts/{id}">>,
  Conforms<Contact, Body<"/api/contacts/{id}", "put">>,
  Conforms<Contact, Row<"/contacts">>,
  Conforms<Contact, Body<"/contacts", "post", 201>>,
  Conforms<Contact, Body<"/contacts/{id}">>,
  Conforms<Contact, Body<"/contacts/{id}", "put">>,

  Conforms<CreditTransaction, Schemas["CreditTransaction"]>,
  Conforms<CreditTransaction, Row<"/billing/history">>,
  Conforms<CreditTransaction, Body<"/admin/users/{id}">["recent_transactions"][number]>,
  Conforms<CreditTransaction, Body<"/admin/users/{id}/credits", "post", 201>["transaction"]>,

  Conforms<ErrorResponse, Schemas["ErrorBody"]>,
];

/** An operation with its answers: what a documented path and method resolve to. */
type Documented = { responses: object };

/** design.md's endpoint lists, aliases included. */
export type Endpoints = [
  Conforms<Documented, Operation<"/api/agents", "get">>,
  Conforms<Documented, Operation<"/api/agents", "post">>,
  Conforms<Documented, Operation<"/api/agents/{id}", "put">>,
  Conforms<Documented, Operation<"/api/agents/{id}", "delete">>,
  Conforms<Documented, Operation<"/api/calls", "get">>,
  Conforms<Documented, Operation<"/api/calls/{id}/transcript", "get">>,
  Conforms<Documented, Operation<"/api/calls/{id}/recording", "get">>,
  Conforms<Documented, Operation<"/api/leads", "get">>,
  Conforms<Documented, Operation<"/api/dashboard/overview", "get">>,
  Conforms<Documented, Operation<"/api/dashboard/analytics", "get">>,
  Conforms<Documented, Operation<"/api/user/credits", "get">>,
  Conforms<Documented, Operation<"/auth/register", "post">>,
  Conforms<Documented, Operation<"/auth/login", "post">>,
  Conforms<Documented, Operation<"/auth/social", "post">>,
  Conforms<Documented, Operation<"/auth/profile", "get">>,
  Conforms<Documented, Operation<"/auth/reset-password", "post">>,
  Conforms<Documented, Operation<"/agents", "get">>,
  Conforms<Documented, Operation<"/agents", "post">>,
  Conforms<Documented, Operation<"/agents/{id}", "put">>,
  Conforms<Documented, Operation<"/agents/{id}", "delete">>,
  Conforms<Documented, Operation<"/agents/{id}/config", "get">>,
  Conforms<Documented, Operation<"/webhooks/elevenlabs/call-completed", "post">>,
  Conforms<Documented, Operation<"/webhooks/elevenlabs/call-analytics", "post">>,
  Conforms<Documented, Operation<"/api/contact-lookup/{phone}", "get">>,
  Conforms<Documented, Operation<"/billing/credits", "get">>,
  Conforms<Documented, Operation<"/billing/purchase", "post">>,
  Conforms<Documented, Operation<"/billing/history", "get">>,
  Conforms<Documented, Operation<"/billing/webhook/stripe", "post">>,
  Conforms<Documented, Operation<"/contacts/upload", "post">>,
  Conforms<Documented, Operation<"/contacts", "get">>,
  Conforms<Documented, Operation<"/contacts", "post">>,
  Conforms<Documented, Operation<"/contacts/{id}", "put">>,
  Conforms<Documented, Operation<"/contacts/{id}", "delete">>,
  Conforms<Documented, Operation<"/api/lookup/{phone}", "get">>,
  Conforms<Documented, Operation<"/analytics/dashboard", "get">>,
  Conforms<Documented, Operation<"/analytics/leads", "get">>,
  Conforms<Documented, Operation<"/analytics/calls", "get">>,
  Conforms<Documented, Operation<"/analytics/reports", "get">>,
];
