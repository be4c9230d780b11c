"""Planning, free of torch: batches (contents × styles × sweeps), the pyramid of scales, the
memory budget and tile layout, and how long runs take. The app plans and estimates with it
without loading the engine; the engine runs the plans it makes."""
