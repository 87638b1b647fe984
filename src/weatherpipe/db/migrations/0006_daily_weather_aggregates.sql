-- The original project's processed zone was a table daily_weather_aggregates that its SQL and
-- dashboard query. This view gives them the same name and columns over daily_weather (plus the
-- observation count, which the averages are weighted by when days or places are combined), so
-- they run on weatherpipe's database unchanged.
CREATE VIEW daily_weather_aggregates AS
SELECT day,
       location,
       avg_temperature_c,
       avg_humidity_pct,
       total_precipitation_mm AS sum_precipitation_mm,
       avg_wind_speed_kmh,
       observations
FROM daily_weather;

GRANT SELECT ON daily_weather_aggregates TO weatherpipe_reader, weatherpipe_writer;
