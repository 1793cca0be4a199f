// design.md's TypeScript models, copied verbatim (only `export` added): the frontend's contract.
// check.ts checks the served OpenAPI schemas against them. Do not edit to make a check pass.

export interface User {
  id: string;
  email: string;
  name: string;
  credits: number;
  created_at: Date;
  updated_at: Date;
  is_active: boolean;
  auth_provider: 'email' | 'google' | 'linkedin';
}

export interface Agent {
  id: string;
  user_id: string;
  elevenlabs_agent_id: string;
  name: string;
  created_at: Date;
  updated_at: Date;
  is_active: boolean;
}

export interface Call {
  id: string;
  agent_id: string;
  user_id: string;
  elevenlabs_conversation_id: string;
  phone_number: string;
  duration_minutes: number;
  status: 'completed' | 'failed' | 'in_progress';
  recording_url: string;
  created_at: Date;
  completed_at: Date;
}

export interface Transcript {
  id: string;
  call_id: string;
  content: string;
  speaker_segments: Array<{
    speaker: 'agent' | 'user';
    text: string;
    timestamp: number;
  }>;
  created_at: Date;
}

export interface LeadAnalytics {
  id: string;
  call_id: string;
  intent_level: string;
  intent_score: number;
  urgency_level: string;
  urgency_score: number;
  budget_constraint: string;
  budget_score: number;
  fit_alignment: string;
  fit_score: number;
  engagement_health: string;
  engagement_score: number;
  total_score: number;
  lead_status_tag: string;
  reasoning: {
    intent: string;
    urgency: string;
    budget: string;
    fit: string;
    engagement: string;
    cta_behavior: string;
  };
  cta_interactions: {
    pricing_clicked: boolean;
    demo_clicked: boolean;
    followup_clicked: boolean;
    sample_clicked: boolean;
    escalated_to_human: boolean;
  };
  created_at: Date;
}

export interface Contact {
  id: string;
  user_id: string;
  name: string;
  phone_number: string;
  email?: string;
  company?: string;
  notes?: string;
  created_at: Date;
  updated_at: Date;
}

export interface CreditTransaction {
  id: string;
  user_id: string;
  type: 'purchase' | 'usage' | 'bonus' | 'admin_adjustment';
  amount: number;
  balance_after: number;
  description: string;
  stripe_payment_id?: string;
  created_at: Date;
}

export interface ErrorResponse {
  error: {
    code: string;
    message: string;
    details?: any;
    timestamp: Date;
  };
}
