# Builds and runs the trainer in a Debian slim image (no NASM needed: the kernels are Rust asm!).
#   docker build -t catdog .
#   docker run --rm -v "$PWD/data:/app/data" catdog                 # train (fetches data if none)
#   docker run --rm -v "$PWD/photos:/photos" -v "$PWD/data:/app/data" catdog tools/pack /photos --test-fraction 0.2 -o data
FROM rust:1-slim-bookworm AS build
WORKDIR /app
COPY . .
RUN ./build.sh

FROM debian:bookworm-slim
WORKDIR /app
COPY --from=build /app/model /app/model
COPY --from=build /app/target/release/pack /app/target/release/pack
COPY --from=build /app/tools/pack /app/tools/pack
ENTRYPOINT []
CMD ["./model"]
