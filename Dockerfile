# One image for every Warden role (worker, api, jobs); the command picks the role.
FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1 TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS=""
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY detectors detectors
COPY policies policies
COPY streams streams
COPY api api
COPY store store
COPY jobs jobs
COPY warden warden
RUN pip install -c constraints.txt .
RUN useradd --create-home warden
USER warden
EXPOSE 8000
ENTRYPOINT ["warden"]
CMD ["api"]
