# The course's image CNN (horses or humans): ImageDataGenerator with augmentation reading
# a folder of PNG files, RMSprop, fit on the generators. As in the course but for the
# image size and the layer sizes (small, so that it runs in seconds) and the folder names.
import tensorflow as tf
from tensorflow.keras.optimizers import RMSprop
from tensorflow.keras.preprocessing.image import ImageDataGenerator

TRAINING_DIR = "horse-or-human/train"
VALIDATION_DIR = "horse-or-human/validation"

model = tf.keras.models.Sequential([
    # Note the input shape is the desired size of the image 32x32 with 3 bytes color
    tf.keras.layers.Conv2D(8, (3, 3), activation='relu', input_shape=(32, 32, 3)),
    tf.keras.layers.MaxPooling2D(2, 2),
    tf.keras.layers.Conv2D(16, (3, 3), activation='relu'),
    tf.keras.layers.MaxPooling2D(2, 2),
    # Flatten the results to feed into a DNN
    tf.keras.layers.Flatten(),
    tf.keras.layers.Dense(32, activation='relu'),
    # Only 1 output neuron. It will contain a value from 0-1 where 0 for 1 class ('horses')
    # and 1 for the other ('humans')
    tf.keras.layers.Dense(1, activation='sigmoid')
])

model.summary()

model.compile(loss='binary_crossentropy',
              optimizer=RMSprop(learning_rate=0.001),
              metrics=['accuracy'])

# All images will be rescaled by 1./255, the training ones augmented
train_datagen = ImageDataGenerator(
      rescale=1./255,
      rotation_range=10,
      width_shift_range=0.1,
      height_shift_range=0.1,
      zoom_range=0.1,
      horizontal_flip=True)
validation_datagen = ImageDataGenerator(rescale=1/255)

# Flow training images in batches of 16 using train_datagen generator
train_generator = train_datagen.flow_from_directory(
        TRAINING_DIR,  # This is the source directory for training images
        target_size=(32, 32),  # All images will be resized to 32x32
        batch_size=16,
        # Since we use binary_crossentropy loss, we need binary labels
        class_mode='binary')

validation_generator = validation_datagen.flow_from_directory(
        VALIDATION_DIR,
        target_size=(32, 32),
        batch_size=16,
        class_mode='binary')

history = model.fit(
      train_generator,
      steps_per_epoch=8,
      epochs=8,
      verbose=1,
      validation_data=validation_generator,
      validation_steps=3)
