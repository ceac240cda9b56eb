"""Batch: upload a CSV of dates (and covariates) -> the service's forecast of each row, to download."""

import streamlit as st

from helpers.dashboard import cached, views

st.title("Batch forecast")
st.caption("Upload a CSV with a date column (YYYY-MM-DD; named date, ds, target_date or day). The days are sent to "
           "the forecast service (POST /predict, one request per run of consecutive days), never the file; other "
           "columns are kept beside the forecast (the served models need only the dates).")
with cached.shown_errors():
    models = cached.read("service_models")
window = (models["forecastable"]["start_date"], models["forecastable"]["end_date"])
names = [m["name"] for m in models["models"]]
st.markdown(f"The service forecasts **{window[0]}** to **{window[1]}**.")

upload = st.file_uploader("CSV of days", type=["csv"])
model = st.selectbox("Model", names, index=names.index(models["selected_model"]))
if upload is None:
    st.info("Upload a file to forecast its days.")
    st.stop()
with cached.shown_errors():
    batch = views.read_batch(upload.getvalue(), window)
st.write(f"{len(batch.rows):,} rows, {len(batch.days):,} distinct days"
         + (f"; kept as they are: {', '.join(batch.covariates)}" if batch.covariates else "") + ".")
if st.button("Forecast these days", type="primary"):
    with cached.shown_errors():
        st.session_state["batch"] = (upload.file_id, model, views.forecast_batch(cached.client(), batch, model))
done = st.session_state.get("batch")
if done and done[0] == upload.file_id and done[1] == model:
    result = views.people_table(done[2])
    st.dataframe(result, hide_index=True)
    st.download_button("Download the forecasts (CSV)", result.to_csv(index=False).encode(),
                       file_name=f"forecast-{model}.csv", mime="text/csv")
