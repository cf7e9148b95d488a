-- 0005_trials: the closed loop's work on a scenario (DESIGN §7), as JSON texts or NULL:
-- baseline {system, template, options}, tasks [{id, input, checks}], objective
-- {kind, max_quality_drop}. The API validates them (server/tasks.c) before they get here;
-- the built-in work below is held to the same validation by tests/unit/check_tasks.c.
ALTER TABLE scenarios ADD COLUMN baseline TEXT;
ALTER TABLE scenarios ADD COLUMN tasks TEXT;
ALTER TABLE scenarios ADD COLUMN objective TEXT;

-- Requirement extraction: each job description names the technical requirements to find
-- (contains, or a whole-word regex for short names such as Go and C) and perks that are not
-- requirements (not_contains); the baseline asks for a JSON object, so the shape is checked too.
UPDATE scenarios SET
 baseline = json('{"system": "You extract technical requirements from job descriptions for a job-matching pipeline.", "template": "Job description:\n{input}\n\nReturn the technical requirements as a JSON object {\"requirements\": [\"...\"]}.", "options": {"temperature": 0.2, "num_predict": 512}}'),
 objective = json('{"kind": "quality", "max_quality_drop": 0.02}'),
 tasks = json('[
 {"id": "backend-go", "input": "Acme Payments is hiring a backend engineer. You will build services in Go that talk to PostgreSQL and publish events to Kafka. Experience running services on Kubernetes is required. We offer free lunches and a yearly team trip.", "checks": [{"json_schema": {"type": "object", "properties": {"requirements": {"type": "array", "items": {"type": "string", "minLength": 1}}}, "required": ["requirements"], "additionalProperties": false}}, {"regex": "(^|[^A-Za-z0-9])(Go|Golang)([^A-Za-z0-9]|$)"}, {"contains": "PostgreSQL"}, {"contains": "Kafka"}, {"contains": "Kubernetes"}, {"not_contains": "lunch"}, {"not_contains": "trip"}]},
 {"id": "frontend-react", "input": "Join our product team as a frontend developer. Daily work is React with TypeScript, styled with CSS modules; tests are written with Jest. You should be comfortable with REST APIs. The office is dog-friendly.", "checks": [{"json_schema": {"type": "object", "properties": {"requirements": {"type": "array", "items": {"type": "string", "minLength": 1}}}, "required": ["requirements"], "additionalProperties": false}}, {"contains": "React"}, {"contains": "TypeScript"}, {"regex": "(^|[^A-Za-z0-9])Jest([^A-Za-z0-9]|$)"}, {"regex": "(^|[^A-Za-z0-9])REST([^A-Za-z0-9]|$)"}, {"not_contains": "dog"}]},
 {"id": "data-engineer", "input": "Data engineer wanted. You will maintain Airflow pipelines written in Python, model data in Snowflake with dbt, and keep SQL queries fast. 3+ years of experience with Python required. Flexible hours and a gym membership.", "checks": [{"json_schema": {"type": "object", "properties": {"requirements": {"type": "array", "items": {"type": "string", "minLength": 1}}}, "required": ["requirements"], "additionalProperties": false}}, {"contains": "Airflow"}, {"contains": "Python"}, {"contains": "Snowflake"}, {"regex": "(^|[^A-Za-z0-9])dbt([^A-Za-z0-9]|$)"}, {"regex": "(^|[^A-Za-z0-9])SQL([^A-Za-z0-9]|$)"}, {"not_contains": "gym"}]},
 {"id": "devops-aws", "input": "Our platform team needs a DevOps engineer to manage AWS infrastructure with Terraform. You will own CI/CD in GitHub Actions and monitoring with Prometheus and Grafana. On-call one week in six; we pay a generous pension.", "checks": [{"json_schema": {"type": "object", "properties": {"requirements": {"type": "array", "items": {"type": "string", "minLength": 1}}}, "required": ["requirements"], "additionalProperties": false}}, {"regex": "(^|[^A-Za-z0-9])AWS([^A-Za-z0-9]|$)"}, {"contains": "Terraform"}, {"contains": "GitHub Actions"}, {"contains": "Prometheus"}, {"contains": "Grafana"}, {"not_contains": "pension"}]},
 {"id": "embedded-c", "input": "Firmware engineer for battery-powered sensors. Write C for ARM Cortex-M microcontrollers running FreeRTOS, and debug over JTAG. Knowledge of I2C and SPI buses is a must. You will enjoy our quiet office by the lake.", "checks": [{"json_schema": {"type": "object", "properties": {"requirements": {"type": "array", "items": {"type": "string", "minLength": 1}}}, "required": ["requirements"], "additionalProperties": false}}, {"regex": "(^|[^A-Za-z0-9])C([^A-Za-z0-9]|$)"}, {"contains": "Cortex-M"}, {"contains": "FreeRTOS"}, {"regex": "(^|[^A-Za-z0-9])JTAG([^A-Za-z0-9]|$)"}, {"regex": "(^|[^A-Za-z0-9])I2C([^A-Za-z0-9]|$)"}, {"regex": "(^|[^A-Za-z0-9])SPI([^A-Za-z0-9]|$)"}, {"not_contains": "lake"}]},
 {"id": "ml-engineer", "input": "Machine learning engineer: train and serve models with PyTorch, track experiments in MLflow, and deploy with Docker. A degree in computer science or similar is preferred. Experience with CUDA is a plus. Stock options for everyone.", "checks": [{"json_schema": {"type": "object", "properties": {"requirements": {"type": "array", "items": {"type": "string", "minLength": 1}}}, "required": ["requirements"], "additionalProperties": false}}, {"contains": "PyTorch"}, {"contains": "MLflow"}, {"contains": "Docker"}, {"regex": "(^|[^A-Za-z0-9])CUDA([^A-Za-z0-9]|$)"}, {"not_contains": "stock"}]},
 {"id": "mobile-ios", "input": "We are looking for an iOS developer to build our app in Swift with SwiftUI, store data in Core Data, and ship through Xcode Cloud. You know your way around Combine. Four weeks of paid holiday.", "checks": [{"json_schema": {"type": "object", "properties": {"requirements": {"type": "array", "items": {"type": "string", "minLength": 1}}}, "required": ["requirements"], "additionalProperties": false}}, {"contains": "Swift"}, {"contains": "SwiftUI"}, {"contains": "Core Data"}, {"contains": "Combine"}, {"not_contains": "holiday"}]},
 {"id": "java-spring", "input": "Senior Java developer for our trading back office: Java 17, Spring Boot, Hibernate, and Oracle databases. You have written JUnit tests for years. Friday breakfasts and a bike scheme.", "checks": [{"json_schema": {"type": "object", "properties": {"requirements": {"type": "array", "items": {"type": "string", "minLength": 1}}}, "required": ["requirements"], "additionalProperties": false}}, {"regex": "(^|[^A-Za-z0-9])Java([^A-Za-z0-9]|$)"}, {"contains": "Spring Boot"}, {"contains": "Hibernate"}, {"contains": "Oracle"}, {"contains": "JUnit"}, {"not_contains": "breakfast"}, {"not_contains": "bike"}]},
 {"id": "security", "input": "Security engineer. Run penetration tests against web applications, review code for the OWASP Top 10, and automate scanning with Burp Suite. Linux administration skills required. We value a good sense of humour.", "checks": [{"json_schema": {"type": "object", "properties": {"requirements": {"type": "array", "items": {"type": "string", "minLength": 1}}}, "required": ["requirements"], "additionalProperties": false}}, {"contains": "OWASP"}, {"contains": "Burp Suite"}, {"contains": "Linux"}, {"not_contains": "humour"}]},
 {"id": "rust-systems", "input": "Systems programmer to work on a storage engine in Rust. You understand async I/O with Tokio, profile with perf, and have used gRPC. A relocation package is available.", "checks": [{"json_schema": {"type": "object", "properties": {"requirements": {"type": "array", "items": {"type": "string", "minLength": 1}}}, "required": ["requirements"], "additionalProperties": false}}, {"regex": "(^|[^A-Za-z0-9])Rust([^A-Za-z0-9]|$)"}, {"contains": "Tokio"}, {"regex": "(^|[^A-Za-z0-9])perf([^A-Za-z0-9]|$)"}, {"regex": "(^|[^A-Za-z0-9])gRPC([^A-Za-z0-9]|$)"}, {"not_contains": "relocation"}]},
 {"id": "dotnet", "input": "Full-stack .NET developer. Back end in C# with ASP.NET Core and Entity Framework on SQL Server; front end in Angular. Team lunches every Thursday.", "checks": [{"json_schema": {"type": "object", "properties": {"requirements": {"type": "array", "items": {"type": "string", "minLength": 1}}}, "required": ["requirements"], "additionalProperties": false}}, {"contains": "ASP.NET Core"}, {"contains": "Entity Framework"}, {"contains": "SQL Server"}, {"contains": "Angular"}, {"not_contains": "lunch"}]},
 {"id": "sre-observability", "input": "Site reliability engineer. Keep our Linux fleet healthy with Ansible, trace requests with OpenTelemetry, and query logs in Elasticsearch. You should script in Bash and Python. Free parking on site.", "checks": [{"json_schema": {"type": "object", "properties": {"requirements": {"type": "array", "items": {"type": "string", "minLength": 1}}}, "required": ["requirements"], "additionalProperties": false}}, {"contains": "Ansible"}, {"contains": "OpenTelemetry"}, {"contains": "Elasticsearch"}, {"regex": "(^|[^A-Za-z0-9])Bash([^A-Za-z0-9]|$)"}, {"contains": "Python"}, {"not_contains": "parking"}]}
 ]')
WHERE name = 'job_extraction_improvement' AND builtin = 1;

-- Analyses that must be right and short: one correct figure or name each, in at most 60 words.
-- The baseline asks for step-by-step detail with a large num_predict; the objective is latency.
UPDATE scenarios SET
 baseline = json('{"system": "You are a meticulous performance analyst. Think through every problem step by step, explain your reasoning in detail, and consider alternatives before you answer.", "template": "{input}", "options": {"temperature": 0.7, "num_predict": 1024}}'),
 objective = json('{"kind": "latency", "max_quality_drop": 0.05}'),
 tasks = json('[
 {"id": "sql-bottleneck", "input": "A web request takes 2.4 s in total: DNS 20 ms, TLS handshake 80 ms, application code 250 ms, database query 2.05 s. Which step is the bottleneck?", "checks": [{"regex": "([Dd]atabase|SQL|[Qq]uery)"}, {"max_words": 60}]},
 {"id": "linear-scaling", "input": "A batch of 1200 items takes 30 minutes with 4 workers. If it scales linearly, how many minutes does it take with 12 workers?", "checks": [{"regex": "(^|[^0-9.])10([^0-9]|$)"}, {"max_words": 60}]},
 {"id": "cache-hit-ratio", "input": "A cache served 450 hits and 50 misses. What is its hit ratio in percent?", "checks": [{"regex": "90 ?%|90 percent"}, {"max_words": 60}]},
 {"id": "parallel-calls", "input": "Service A calls B (300 ms) and then C (500 ms); the two calls are independent. What is the total time of the two calls if they run in parallel, in ms?", "checks": [{"regex": "(^|[^0-9.])500([^0-9]|$)"}, {"max_words": 60}]},
 {"id": "memory-leak", "input": "A process starts at 800 MB and grows by 50 MB per hour. Its limit is 2000 MB. After how many hours does it reach the limit?", "checks": [{"regex": "(^|[^0-9.])24([^0-9]|$)"}, {"max_words": 60}]},
 {"id": "tokens-per-second", "input": "A model generates 8 tokens per second. How many seconds does a 480-token answer take?", "checks": [{"regex": "(^|[^0-9.])60([^0-9]|$)"}, {"max_words": 60}]},
 {"id": "disk-read", "input": "A disk reads 100 MB/s. How many seconds does it take to read a 6000 MB file?", "checks": [{"regex": "(^|[^0-9.])60([^0-9]|$)"}, {"max_words": 60}]},
 {"id": "membership", "input": "For repeated membership tests on one million strings, which is faster in Python: a list or a set?", "checks": [{"contains": "set"}, {"not_contains": "list is faster"}, {"max_words": 60}]},
 {"id": "index", "input": "Which index speeds up SELECT * FROM orders WHERE customer_id = ? ORDER BY created_at DESC LIMIT 10?", "checks": [{"contains": "customer_id"}, {"contains": "created_at"}, {"max_words": 60}]},
 {"id": "complexity", "input": "Code compares every one of n users with every one of m orders in a nested loop. What is its time complexity in big-O notation?", "checks": [{"regex": "O\\((n ?(\\*|x|·|×)? ?m|m ?(\\*|x|·|×)? ?n)\\)"}, {"max_words": 60}]},
 {"id": "p95", "input": "Of 100 request latencies, sorted ascending, the 95th value is 420 ms and the 96th is 610 ms. Using the nearest-rank method, what is the 95th percentile latency in ms?", "checks": [{"regex": "(^|[^0-9.])420([^0-9]|$)"}, {"max_words": 60}]},
 {"id": "amdahl", "input": "80 % of a job can run in parallel and 20 % cannot. What is the largest speed-up that any number of workers can give?", "checks": [{"regex": "(^|[^0-9.])5(\\.0)? ?(x|times|×)|five times|factor of 5"}, {"max_words": 60}]}
 ]')
WHERE name = 'response_speed_optimization' AND builtin = 1;

-- One task each for a format a model may or may not follow, phrased so that any model can:
-- exact words, digits, JSON without a code fence, CSV, bullet lines, dates, short summaries.
UPDATE scenarios SET
 baseline = json('{"system": "You are a helpful assistant.", "template": "{input}", "options": {"temperature": 0.7, "num_predict": 256}}'),
 objective = json('{"kind": "quality", "max_quality_drop": 0.02}'),
 tasks = json('[
 {"id": "yes-no", "input": "Is 17 a prime number? Answer with exactly one word: yes or no.", "checks": [{"equals": "yes"}]},
 {"id": "digit-only", "input": "How many legs does a spider have? Reply with the number in digits only.", "checks": [{"equals": "8"}]},
 {"id": "json-capital", "input": "Give the capital of Japan as a JSON object with the keys \"city\" and \"country\". Output only the JSON, no code fence.", "checks": [{"json_schema": {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}}, "required": ["city", "country"], "additionalProperties": false}}, {"contains": "Tokyo"}]},
 {"id": "csv-line", "input": "List the three primary colours of light on one line, lowercase, separated by commas without spaces. No other text.", "checks": [{"regex": "^(red|green|blue),(red|green|blue),(red|green|blue)\n?$"}, {"contains": "red"}, {"contains": "green"}, {"contains": "blue"}]},
 {"id": "three-bullets", "input": "Name three benefits of unit tests as exactly three lines, each starting with \"- \". No other text.", "checks": [{"regex": "^- [^\n]+\n- [^\n]+\n- [^\n]+\n?$"}]},
 {"id": "short-summary", "input": "Summarise in at most 12 words: \"The release was delayed two weeks because the database migration failed on the largest customer''s data, and the team had to rewrite it.\"", "checks": [{"max_words": 12}, {"regex": "(migration|database)"}]},
 {"id": "json-squares", "input": "Return the first five square numbers (starting at 1) as a JSON array of integers. Output only the array.", "checks": [{"json_schema": {"type": "array", "items": {"type": "integer", "minimum": 1}}}, {"regex": "^\\[ ?1, ?4, ?9, ?16, ?25 ?\\]$"}]},
 {"id": "uppercase", "input": "Write the word parley in uppercase letters. Reply with that word only.", "checks": [{"equals": "PARLEY"}]},
 {"id": "translation-only", "input": "Translate \"good morning\" into French. Reply with the translation only, without quotes or explanation.", "checks": [{"regex": "^[Bb]onjour[.!]?$"}]},
 {"id": "iso-date", "input": "Write the date of Christmas Day 2026 in ISO 8601 format (YYYY-MM-DD). Nothing else.", "checks": [{"equals": "2026-12-25"}]},
 {"id": "json-sentiment", "input": "Classify the sentiment of this review: \"The update broke my workflow again.\" Reply only with a JSON object {\"sentiment\": \"positive\" | \"negative\" | \"neutral\"}.", "checks": [{"json_schema": {"type": "object", "properties": {"sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]}}, "required": ["sentiment"], "additionalProperties": false}}, {"contains": "negative"}]},
 {"id": "answer-line", "input": "What is 12 times 12? Reply with a single line of the form ANSWER: <number>.", "checks": [{"regex": "^ANSWER: 144\n?$"}]},
 {"id": "unit-conversion", "input": "Convert 3 km to metres. Reply in the form \"<number> m\" and nothing else.", "checks": [{"equals": "3000 m"}]}
 ]')
WHERE name = 'prompt_engineering_breakthrough' AND builtin = 1;

-- A job's closed loop: JSON {max_trials, repeat, holdout, seed}, or NULL for a conversation only.
ALTER TABLE jobs ADD COLUMN optimize TEXT;

-- The trials of a job with "optimize" (DESIGN §7): trial 0 is the baseline, then one per
-- proposal. config is the full configuration tested {system, template, options}; result holds
-- the figures once the trial is done (server/stats.h).
CREATE TABLE trials (
	job_id      TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
	n           INTEGER NOT NULL,
	kind        TEXT NOT NULL CHECK (kind IN ('baseline', 'prompt', 'setting')),
	turn        INTEGER,                -- the interviewer turn that proposed it; NULL for 0
	proposal    TEXT,                   -- JSON {system?, template?, options?}
	config      TEXT NOT NULL,          -- JSON {system, template, options}
	status      TEXT NOT NULL CHECK (status IN ('running', 'done', 'rejected', 'cancelled')),
	reason      TEXT,
	message     TEXT,                   -- the "parley" item both models were shown, or NULL
	result      TEXT,                   -- JSON figures; NULL until done
	created_at  INTEGER NOT NULL,
	finished_at INTEGER,
	PRIMARY KEY (job_id, n)
);

-- Every task call of a trial, stored as it finishes: a trial interrupted by a restart resumes
-- at its first task without a row here, and the key keeps a call from being stored twice.
CREATE TABLE trial_calls (
	job_id            TEXT NOT NULL,
	trial             INTEGER NOT NULL,
	split             TEXT NOT NULL CHECK (split IN ('train', 'holdout')),
	task_idx          INTEGER NOT NULL, -- index in the scenario's task list
	rep               INTEGER NOT NULL, -- 0 .. repeat-1
	task_id           TEXT NOT NULL,
	input             TEXT NOT NULL,    -- the user message sent
	reply             TEXT NOT NULL,
	checks            TEXT NOT NULL,    -- JSON [{check, passed, why?}]
	score             REAL NOT NULL,
	passed            INTEGER NOT NULL,
	error             TEXT,             -- the backend's error when the call failed
	started_at        INTEGER NOT NULL,
	finished_at       INTEGER NOT NULL,
	wall_ms           REAL NOT NULL,
	ttft_ms           REAL,
	prompt_tokens     INTEGER,
	cached_tokens     INTEGER,
	completion_tokens INTEGER,
	PRIMARY KEY (job_id, trial, split, task_idx, rep),
	FOREIGN KEY (job_id, trial) REFERENCES trials (job_id, n) ON DELETE CASCADE
);
