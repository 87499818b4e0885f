# rkt-ng build. `make` builds bin/rkt and the stage1 images bin/stage1-ns.aci
# (namespaces) and bin/stage1-kvm.aci (a virtual machine per pod); `make test` runs every test; `make demo` runs the whole
# signed-image path end to end; `make bench` prints the performance table.

PREFIX      ?= /usr/local
DESTDIR     ?=
VERSION     ?= 0.1.0
GO          ?= go
GOFLAGS_BIN := -trimpath -ldflags "-s -w -X main.version=$(VERSION)"
BUILD       := build
STAGE1_DIR  := $(BUILD)/stage1-ns
KVM_DIR     := $(BUILD)/stage1-kvm
KERNEL_DIR  := $(BUILD)/kernel
export CGO_ENABLED := 0
# The stage1 manifest's arch label names the build host in appc's words
# (spec/types.md): rkt refuses images of another arch at fetch and run.
APPC_ARCH   := $(shell $(GO) env GOARCH | sed 's/^arm64$$/aarch64/; s/^386$$/i386/; s/^arm$$/armv7l/')

GO_SOURCES := $(shell find . -name '*.go' -not -path './build/*' 2>/dev/null) go.mod go.sum

.PHONY: all deps test demo bench install clean fuzz soak cri-tools

all: bin/rkt bin/stage1-ns.aci bin/stage1-kvm.aci bin/rkt-cri

bin/rkt: $(GO_SOURCES)
	$(GO) build $(GOFLAGS_BIN) -o $@ ./cmd/rkt

# The CRI server is its own binary: grpc and the k8s modules stay out of rkt.
bin/rkt-cri: $(GO_SOURCES)
	$(GO) build $(GOFLAGS_BIN) -o $@ ./cmd/rkt-cri

$(BUILD)/stage1-bin/stage1 $(BUILD)/stage1-bin/stage2: $(GO_SOURCES)
	$(GO) build $(GOFLAGS_BIN) -o $(BUILD)/stage1-bin/stage1 ./cmd/stage1-ns
	$(GO) build $(GOFLAGS_BIN) -o $(BUILD)/stage1-bin/stage2 ./cmd/stage2

$(BUILD)/cni-plugins/.built: go.mod go.sum cni/build-plugins.sh
	sh cni/build-plugins.sh $(BUILD)/cni-plugins
	touch $@

# The stage1 image is built with rkt itself (rkt image build), reproducibly.
bin/stage1-ns.aci: bin/rkt $(BUILD)/stage1-bin/stage1 $(BUILD)/stage1-bin/stage2 $(BUILD)/cni-plugins/.built stage1/ns/image/manifest.json
	rm -rf $(STAGE1_DIR) && mkdir -p $(STAGE1_DIR)/rootfs/opt/stage2 $(STAGE1_DIR)/rootfs/rkt $(STAGE1_DIR)/rootfs/etc \
		$(STAGE1_DIR)/rootfs/proc $(STAGE1_DIR)/rootfs/sys $(STAGE1_DIR)/rootfs/dev $(STAGE1_DIR)/rootfs/tmp \
		$(STAGE1_DIR)/rootfs/usr/lib/rkt/plugins/net
	cp $(BUILD)/stage1-bin/stage1 $(BUILD)/stage1-bin/stage2 $(STAGE1_DIR)/rootfs/
	for e in init gc stop enter app-add app-start app-stop app-rm app-reopen-log app-attach; do ln $(STAGE1_DIR)/rootfs/stage1 $(STAGE1_DIR)/rootfs/$$e; done
	cp $(BUILD)/cni-plugins/* $(STAGE1_DIR)/rootfs/usr/lib/rkt/plugins/net/
	sed 's/@VERSION@/$(VERSION)/; s/@ARCH@/$(APPC_ARCH)/' stage1/ns/image/manifest.json > $(STAGE1_DIR)/manifest
	bin/rkt image build --overwrite --mtime=0 $(STAGE1_DIR) $@

# The KVM stage1's guest kernel: Debian's linux-image-amd64 package,
# downloaded and unpacked into build/kernel, not installed on the host.
$(KERNEL_DIR)/.fetched: scripts/fetch-kernel.sh
	sh scripts/fetch-kernel.sh $(KERNEL_DIR)
	touch $@

$(BUILD)/stage1-kvm-bin/.built: $(GO_SOURCES) $(KERNEL_DIR)/.fetched $(BUILD)/stage1-bin/stage1 $(BUILD)/stage1-bin/stage2
	$(GO) build $(GOFLAGS_BIN) -o $(BUILD)/stage1-kvm-bin/stage1-kvm ./cmd/stage1-kvm
	$(GO) build $(GOFLAGS_BIN) -o $(BUILD)/stage1-kvm-bin/agent ./cmd/stage1-kvm-agent
	$(GO) run ./stage1/kvm/internal/mkinitramfs -agent $(BUILD)/stage1-kvm-bin/agent \
		-ns $(BUILD)/stage1-bin/stage1 -stage2 $(BUILD)/stage1-bin/stage2 \
		-moddir $(KERNEL_DIR)/modules -o $(BUILD)/stage1-kvm-bin/initramfs
	$(GO) run ./stage1/kvm/internal/mkvmlinux -o $(BUILD)/stage1-kvm-bin/vmlinux $(KERNEL_DIR)/vmlinuz
	touch $@

# The KVM stage1 image: the host entrypoints, the guest kernel and
# initramfs, and the namespace stage1 and stage2 that the guest runs the pod
# with (docs/kvm.md).
bin/stage1-kvm.aci: bin/rkt $(BUILD)/stage1-bin/stage1 $(BUILD)/stage1-bin/stage2 $(BUILD)/stage1-kvm-bin/.built $(BUILD)/cni-plugins/.built stage1/kvm/image/manifest.json
	rm -rf $(KVM_DIR) && mkdir -p $(KVM_DIR)/rootfs/opt/stage2 $(KVM_DIR)/rootfs/rkt $(KVM_DIR)/rootfs/etc \
		$(KVM_DIR)/rootfs/proc $(KVM_DIR)/rootfs/sys $(KVM_DIR)/rootfs/dev $(KVM_DIR)/rootfs/tmp \
		$(KVM_DIR)/rootfs/kvm $(KVM_DIR)/rootfs/ns $(KVM_DIR)/rootfs/usr/lib/rkt/plugins/net
	cp $(BUILD)/stage1-kvm-bin/stage1-kvm $(KVM_DIR)/rootfs/run
	for e in gc stop enter; do ln $(KVM_DIR)/rootfs/run $(KVM_DIR)/rootfs/$$e; done
	cp $(BUILD)/stage1-bin/stage2 $(KVM_DIR)/rootfs/stage2
	cp $(BUILD)/stage1-bin/stage1 $(KVM_DIR)/rootfs/ns/run
	cp $(BUILD)/stage1-kvm-bin/vmlinux $(KVM_DIR)/rootfs/kvm/vmlinux
	cp $(BUILD)/stage1-kvm-bin/initramfs $(KVM_DIR)/rootfs/kvm/initramfs
	cp $(BUILD)/cni-plugins/* $(KVM_DIR)/rootfs/usr/lib/rkt/plugins/net/
	sed 's/@VERSION@/$(VERSION)/' stage1/kvm/image/manifest.json > $(KVM_DIR)/manifest
	bin/rkt image build --overwrite --mtime=0 $(KVM_DIR) $@

# deps installs what the tests and the demo need on a fresh Debian 12.
deps:
	sh scripts/install-deps.sh

# cri-tools builds critest and crictl of sigs.k8s.io/cri-tools (pinned in
# the scratch module tests/critools, outside rkt-ng's module graph) for the
# CRI functional tests (tests/cri_test.go, docs/cri.md). Rebuilt only when
# the pin changes.
CRI_TOOLS := $(BUILD)/cri-tools
cri-tools: $(CRI_TOOLS)/critest $(CRI_TOOLS)/crictl

$(CRI_TOOLS)/critest: tests/critools/go.mod tests/critools/go.sum
	cd tests/critools && $(GO) test -c -trimpath -o $(CURDIR)/$@ sigs.k8s.io/cri-tools/cmd/critest

$(CRI_TOOLS)/crictl: tests/critools/go.mod tests/critools/go.sum
	cd tests/critools && $(GO) build -trimpath -o $(CURDIR)/$@ sigs.k8s.io/cri-tools/cmd/crictl

CRI_TEST_ENV := CRITEST=$(CURDIR)/$(CRI_TOOLS)/critest CRICTL=$(CURDIR)/$(CRI_TOOLS)/crictl RKT_CRI=$(CURDIR)/bin/rkt-cri

test: deps all cri-tools
	$(GO) vet ./...
	GOOS=darwin $(GO) build ./manifests/... ./signing/... ./discovery/...
	CGO_ENABLED=1 $(GO) test -count=1 -race $$($(GO) list ./... | grep -v /tests)
	RKT=$(CURDIR)/bin/rkt RKT_STAGE1=$(CURDIR)/bin/stage1-ns.aci RKT_STAGE1_KVM=$(CURDIR)/bin/stage1-kvm.aci $(CRI_TEST_ENV) $(GO) test -count=1 -timeout 30m ./tests/...

demo: deps all
	sh scripts/demo.sh

bench: deps all cri-tools
	$(CRI_TEST_ENV) $(GO) run ./tests/bench

fuzz:
	sh scripts/fuzz.sh

# soak runs SOAK_PODS pods in sequence and checks that gc leaves nothing
# behind and that the time and memory (max RSS) per pod stay flat (TestSoak,
# issue 17).
SOAK_PODS ?= 1000
soak: deps all
	RKT_SOAK_PODS=$(SOAK_PODS) RKT=$(CURDIR)/bin/rkt RKT_STAGE1=$(CURDIR)/bin/stage1-ns.aci $(GO) test -count=1 -v -timeout 4h -run '^TestSoak$$' ./tests/

install: all
	install -D -m 0755 bin/rkt $(DESTDIR)$(PREFIX)/bin/rkt
	install -D -m 0755 bin/rkt-cri $(DESTDIR)$(PREFIX)/bin/rkt-cri
	install -D -m 0644 bin/stage1-ns.aci $(DESTDIR)$(PREFIX)/lib/rkt/stage1-images/stage1-ns.aci
	install -D -m 0644 bin/stage1-kvm.aci $(DESTDIR)$(PREFIX)/lib/rkt/stage1-images/stage1-kvm.aci
	install -d $(DESTDIR)$(PREFIX)/lib/rkt/plugins/net
	install -m 0755 $(BUILD)/cni-plugins/* $(DESTDIR)$(PREFIX)/lib/rkt/plugins/net/

clean:
	rm -rf bin $(BUILD)
