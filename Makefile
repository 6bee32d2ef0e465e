# The two set-up commands of README.md are `make demo` and `make test`; the rest are conveniences.
.PHONY: demo test down bench lint asyncapi install

demo:      ## install, start Kafka + PostgreSQL + every service, load the simulated company, check it against its truth
	bash deploy/demo.sh

test:      ## install, start Kafka + PostgreSQL, run every test
	bash deploy/test.sh

down:      ## stop the demo's services, Kafka and PostgreSQL
	bash deploy/demo.sh stop

bench:     ## every benchmark (results in bench/results/)
	bash deploy/install.sh && .venv/bin/python bench/flow.py && .venv/bin/python bench/ingest.py && \
	.venv/bin/python bench/allocation.py && .venv/bin/python bench/forecast.py && \
	.venv/bin/python bench/commitments.py && .venv/bin/python bench/anomaly.py && \
	.venv/bin/python bench/notify.py && .venv/bin/python bench/purchase.py && .venv/bin/python bench/console.py

lint:
	bash deploy/install.sh && .venv/bin/ruff check . && .venv/bin/ruff format --check .

asyncapi:  ## regenerate docs/asyncapi/ from the services
	bash deploy/install.sh && .venv/bin/python -m finops_runtime.asyncapi --write docs/asyncapi

install:
	bash deploy/install.sh
