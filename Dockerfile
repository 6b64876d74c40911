# mediagw gateway image. Build: docker build -t mediagw .   Run: docker run -p 1935:1935 -p 9935:9935 mediagw
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    MEDIAGW_RTMP_ADDR=0.0.0.0:1935 MEDIAGW_HTTP_ADDR=0.0.0.0:9935 MEDIAGW_LOG_FORMAT=json

WORKDIR /app
COPY pyproject.toml README.md ./
COPY mediagw ./mediagw
COPY segmenter ./segmenter
COPY webrtc ./webrtc
COPY transcode_profiles ./transcode_profiles
RUN pip install . && useradd --system --uid 10001 mediagw && mkdir /data && chown mediagw /data
USER mediagw

EXPOSE 1935 9935
HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9935/healthz', timeout=2)"
ENTRYPOINT ["mediagw"]
CMD ["run"]
