# How `sam build` builds the functions: each function in template.yaml is `BuildMethod: makefile`,
# and SAM calls its `build-<LogicalId>` target below once per function, with ARTIFACTS_DIR set.
# Every target runs the same cargo command, which builds all function binaries at once: the first
# call does the work, the others find it done and copy their bootstrap. Why, and what it costs:
# docs/deploy.md ("How sam build builds").
#
#   make functions                     every bootstrap, under target/lambda/<binary>/bootstrap
#   make functions ARCH=x86_64         the same for x86_64 (template.yaml deploys arm64)
#   make functions PROFILE=release-small
#
# Make in four lines: `name: ; command` is a target with a one-line recipe; `$(call bootstrap,x)`
# expands the `define` block with $(1) = x; `$(or a,b)` is a unless empty; a variable set here
# with `:=` ignores the environment but yields to `make NAME=value`.

PROFILE := deploy
# template.yaml's Globals: Architectures (functions/tests/template.rs checks they agree).
ARCH := arm64
CARGO_LAMBDA := cargo lambda
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
TRIPLE := $(if $(filter x86_64 x86-64,$(ARCH)),x86_64,$(if $(filter arm64,$(ARCH)),aarch64,$(error ARCH is arm64 or x86_64, not $(ARCH))))-unknown-linux-gnu
LAMBDA_DIR := $(TARGET_DIR)/lambda
# cargo-lambda cross-links with zig, then moves each binary to $(LAMBDA_DIR)/<binary>/bootstrap
# (named explicitly, whatever CargoLambda.toml says). The target directory goes through the
# environment: cargo-lambda 1.9 passes a --target-dir flag on to `cargo metadata`, which refuses it.
BUILD := CARGO_TARGET_DIR=$(TARGET_DIR) $(CARGO_LAMBDA) build --profile $(PROFILE) --target $(TRIPLE) --lambda-dir $(LAMBDA_DIR) --output-format binary -p amanar-functions --bins
# That move rewrites every bootstrap after cargo's own lock is released, so under
# `sam build --parallel` one function's copy could read a file another's build is rewriting:
# a build and its copy hold one lock together (flock, from util-linux; without it, build sequentially).
LOCKED := $(if $(shell command -v flock),flock $(TARGET_DIR)/.lambda-build.lock,)
# The ELF e_machine byte of the architecture: a bootstrap of another one is refused, not deployed.
ELF_MACHINE := $(if $(filter aarch64%,$(TRIPLE)),b7,3e)

# Without build-in-source (samconfig.toml), SAM first copies the whole source, target/ included,
# into a scratch directory and runs make there; stop with the reason rather than build from it.
HERE := $(realpath $(dir $(lastword $(MAKEFILE_LIST))))
ifneq ($(HERE),$(realpath $(CURDIR)))
$(error run make in the project root; for sam build keep build_in_source = true in samconfig.toml, or pass --build-in-source)
endif

.PHONY: functions
functions:
	$(BUILD)

# $(1): the function's binary, functions/src/bin/<binary>.rs.
define bootstrap
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: sam build sets it" >&2; exit 1; }
	@mkdir -p $(TARGET_DIR)
	$(LOCKED) sh -c '$(BUILD) && cp $(LAMBDA_DIR)/$(1)/bootstrap "$(ARTIFACTS_DIR)/bootstrap"'
	@test "$$(od -An -tx1 -j18 -N1 "$(ARTIFACTS_DIR)/bootstrap" | tr -d ' ')" = $(ELF_MACHINE) \
		|| { echo "$(1): the bootstrap is not a $(TRIPLE) binary" >&2; exit 1; }
endef

# One line per function of template.yaml: build-<LogicalId>: ; $(call bootstrap,<binary>)
build-HealthFunction: ; $(call bootstrap,api-health)
build-DocsFunction: ; $(call bootstrap,api-docs)
build-EmissionFactorsFunction: ; $(call bootstrap,api-emission-factors)
build-EstimatesFunction: ; $(call bootstrap,api-estimates)
build-FootprintsFunction: ; $(call bootstrap,api-footprints)
build-ActivityImportsFunction: ; $(call bootstrap,api-activity-imports)
build-ProjectsFunction: ; $(call bootstrap,api-projects)
build-CreditsFunction: ; $(call bootstrap,api-credits)
build-CatalogueFunction: ; $(call bootstrap,api-catalogue)
build-AuthFunction: ; $(call bootstrap,api-auth)
build-MeFunction: ; $(call bootstrap,api-me)
build-AdminUsersFunction: ; $(call bootstrap,api-admin-users)
build-OrgsFunction: ; $(call bootstrap,api-orgs)
build-OrdersFunction: ; $(call bootstrap,api-orders)
build-RetirementsFunction: ; $(call bootstrap,api-retirements)
build-PublicRetirementsFunction: ; $(call bootstrap,api-public-retirements)
build-StripeWebhookFunction: ; $(call bootstrap,api-stripe-webhook)
build-PurchasesWorkerFunction: ; $(call bootstrap,worker-purchases)
build-RetirementsWorkerFunction: ; $(call bootstrap,worker-retirements)
build-NotificationsFunction: ; $(call bootstrap,api-notifications)
build-NotificationsWorkerFunction: ; $(call bootstrap,worker-notifications)
build-JobsWorkerFunction: ; $(call bootstrap,worker-jobs)
build-UploadVerifierFunction: ; $(call bootstrap,upload-verifier)
build-HousekeepingFunction: ; $(call bootstrap,housekeeping)
build-PreTokenFunction: ; $(call bootstrap,cognito-pre-token)
