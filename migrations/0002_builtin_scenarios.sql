-- 0002_builtin_scenarios: the three scenarios of the origin phase-2 run.
INSERT INTO scenarios (name, problem, context, goal, builtin, created_at, updated_at) VALUES
 ('job_extraction_improvement',
  'Current model scores 4.2/10 on technical requirement extraction',
  'Sandy pipeline needs better requirement parsing for job matching',
  'Improve job requirement extraction accuracy', 1, 0, 0),
 ('response_speed_optimization',
  'Model takes 45-60 seconds for complex analysis',
  'Real-time applications need sub-15 second responses',
  'Reduce response time while maintaining quality', 1, 0, 0),
 ('prompt_engineering_breakthrough',
  'Generic prompts yield inconsistent results across models',
  'Need model-specific optimization strategies',
  'Design better prompts for specific tasks', 1, 0, 0);
