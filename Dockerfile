# gpuhost agent image.
#   docker build -t gpuhost .                      compiles from source in BUILDER (npm ci: network)
#   npm run package:app && docker build --target prebuilt -t gpuhost .
#                                                  takes the program staged on this machine (no network)
# BASE is the runtime: any image with Node.js 20 or later on PATH as `node`, of the same major as
# the Node the native SQLite module was compiled for (BUILDER's, or the staging machine's).
ARG BASE=node:20-bookworm-slim
ARG BUILDER=node:20-bookworm

FROM ${BASE} AS runtime
# Only the state directory is the agent's; the program (copied below) stays root's and read-only.
COPY --chown=65532:65532 deploy/container/state /var/lib/gpuhost
COPY deploy/container/agent.yaml /etc/gpuhost/agent.yaml
ENV NODE_ENV=production PATH=/usr/local/bin:/usr/bin:/bin GPUHOST_CONFIG=/etc/gpuhost/agent.yaml
# Not root: the Docker socket is reached through its group (compose: group_add; Kubernetes:
# supplementalGroups), and nvidia-smi needs no privilege.
USER 65532:65532
EXPOSE 9477
VOLUME /var/lib/gpuhost
# Node is PID 1 and stops cleanly on SIGTERM itself; compose's `init: true` adds tini to reap.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["node", "-e", \
  "fetch('http://127.0.0.1:9477/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# as the systemd unit sets it: a smaller young generation, a lower peak with thousands of images
ENV NODE_OPTIONS=--max-semi-space-size=4
ENTRYPOINT ["node", "/usr/lib/gpuhost/dist/cli.js"]
CMD ["agent"]

# The program staged by `npm run package:app` (empty unless it ran: the default build ignores it).
FROM runtime AS prebuilt
COPY deploy/container/app/ /usr/lib/

# Compiled here, then staged by the same script as the Debian package and `npm run package:app`,
# so every way of building ships the same tree.
FROM ${BUILDER} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY proto ./proto
COPY packaging/stage-app.sh ./packaging/
RUN npm run -s build && bash packaging/stage-app.sh /app/gpuhost

FROM runtime
COPY --from=build /app/ /usr/lib/
